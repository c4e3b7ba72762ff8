"""Subscription rules: which patterns match an event type (exact, ``prefix.*`` at any depth,
or ``*``), and the event types reserved for the platform."""

from __future__ import annotations

# the platform's own event types: no producer key may publish them
RESERVED_EVENT_PREFIXES = ("endpoint.", "webhook.")


def _candidates(event_type: str) -> list[str]:
    """Subscription patterns that match ``event_type``: itself, each ``prefix.*``, and ``*``."""
    parts = event_type.split(".")
    return [event_type] + [".".join(parts[:i]) + ".*" for i in range(len(parts) - 1, 0, -1)] + ["*"]


def subscription_matches(pattern: str, event_type: str) -> bool:
    """The rule the store's query applies: exact, ``prefix.*`` (any depth below), or ``*``."""
    return pattern in _candidates(event_type)
