"""Subscription rules: which patterns match an event type (exact, ``prefix.*`` at any depth,
or ``*``), the event types reserved for the platform, and who may receive one of those."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# the platform's own event types: no producer key may publish them (message.attempt.: the
# outcome of deliveries, e.g. message.attempt.exhausted; "message." alone stays the producers')
RESERVED_EVENT_PREFIXES = ("endpoint.", "webhook.", "message.attempt.")


def is_reserved(event_type: str) -> bool:
    return event_type.startswith(RESERVED_EVENT_PREFIXES)


def _candidates(event_type: str) -> list[str]:
    """Subscription patterns that match ``event_type``: itself, each ``prefix.*``, and ``*``.

    A reserved type is matched only by itself and by patterns inside its own namespace
    (``endpoint.*``, ``message.attempt.*``; never ``message.*``, which is not reserved): a
    partner asks for the platform's events by name, so ``*`` or another
    wildcard never brings them (they describe partners, not the partner's business)."""
    parts = event_type.split(".")
    prefixes = [".".join(parts[:i]) + ".*" for i in range(len(parts) - 1, 0, -1)]
    if is_reserved(event_type):
        return [event_type] + [p for p in prefixes if is_reserved(p)]
    return [event_type, *prefixes, "*"]


def subscription_matches(pattern: str, event_type: str) -> bool:
    """The rule the store's query applies: exact, ``prefix.*`` (any depth below), or ``*``."""
    return pattern in _candidates(event_type)


def recipients(event_type: str, data: Mapping[str, object], subscribers: Iterable[str]) -> list[str]:
    """Which of an event's ``subscribers`` receive it. All of them, but a platform event is
    about one partner (``data.partnerId``, which only the platform can write: producers may not
    publish reserved types) and goes to that partner alone, never to another tenant; one that
    names no partner goes to nobody."""
    if not is_reserved(event_type):
        return list(subscribers)
    subject = data.get("partnerId")
    return [p for p in subscribers if p == subject]
