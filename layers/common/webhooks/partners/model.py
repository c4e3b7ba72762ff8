"""A partner as the code sees it (:class:`Partner`, and :class:`NewPartner` with the
credentials shown once), what the CLI prints of it, and how a stored document is read: every
field checked for its type, a wrong one read as absent and named (:func:`document_problems`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import NotFound
from .subscriptions import RESERVED_EVENT_PREFIXES, subscription_matches
from .urls import MASK, masked_url


class PartnerNotFound(NotFound):
    def __init__(self, partner_id: str = "") -> None:
        super().__init__("Partner not found")
        self.partner_id = partner_id


class DestinationState:
    """What a partner's own endpoint (the partner document) and any other endpoint share:
    secrets, a pause, a failure streak, disabling. A mixin of the dataclasses that declare
    these fields (:class:`Partner`, ``webhooks.endpoints.model.Endpoint``)."""

    secret_key: str
    previous_secrets: tuple[tuple[str, datetime], ...]
    paused_until: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    disabled_at: datetime | None
    disabled_reason: str | None

    @property
    def endpoint_disabled(self) -> bool:
        return self.disabled_at is not None

    def paused_for(self, now: datetime | None = None) -> float:
        """Seconds its deliveries should still wait (0 when not paused)."""
        if self.paused_until is None:
            return 0.0
        return max(0.0, (self.paused_until - (now or datetime.now(UTC))).total_seconds())

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The current secret first, then rotated-out secrets that have not expired."""
        now = now or datetime.now(UTC)
        return [self.secret_key] + [s for s, expires in self.previous_secrets if expires > now]

    def secrets_kept_by_rotation(self, overlap: timedelta, now: datetime) -> list[dict[str, Any]]:
        """``previousSecrets`` after a rotation: the current secret until ``now + overlap``
        first, then the earlier ones still unexpired; none without an overlap (an emergency
        rotation: a leaked secret may be any of them)."""
        if overlap.total_seconds() <= 0:
            return []
        earlier = [{"secretKey": s, "expiresAt": exp} for s, exp in self.previous_secrets if exp > now]
        return [{"secretKey": self.secret_key, "expiresAt": now + overlap}, *earlier]

    def health(self) -> dict[str, Any]:
        """Its health as the API shows it."""
        return {
            "status": "disabled" if self.endpoint_disabled else "enabled",
            "disabledAt": _iso(self.disabled_at),
            "disabledReason": self.disabled_reason,
            "consecutiveFailures": self.consecutive_failures,
            "failingSince": _iso(self.failing_since),
            "pausedUntil": _iso(self.paused_until) if self.paused_for() > 0 else None,
        }


@dataclass(frozen=True)
class Partner(DestinationState):
    id: str
    name: str
    webhook_url: str
    is_active: bool
    secret_key: str
    previous_secrets: tuple[tuple[str, datetime], ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    headers: tuple[tuple[str, str], ...] = ()  # sent with every webhook (values may be credentials)
    timeout_ms: int | None = None  # overrides WEBHOOK_TIMEOUT for this partner
    rate_limit: int | None = None  # deliveries per second; None is unlimited
    paused_until: datetime | None = None  # set by a 429 / Retry-After: deliveries wait until then
    # endpoint health: the failure streak, and when (and why) the endpoint was disabled
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    # what this partner's API key may publish (exact or `prefix.*`); None: all but reserved
    publish_scopes: tuple[str, ...] | None = None
    # which event types the partner may subscribe its endpoints to itself (self-service);
    # None: any, as with publish_scopes
    receive_scopes: tuple[str, ...] | None = None
    # its API key was a plain (Node service) key hashed by `webhooks migrate`: rotate it
    api_key_legacy: bool = False
    # fields of the stored document that had the wrong type (read as absent), e.g.
    # "createdAt is str, not a date-time": a legacy document `webhooks migrate` reports
    problems: tuple[str, ...] = ()

    def may_publish(self, event_type: str) -> str | None:
        """Why this partner's key may not publish ``event_type`` (None: it may)."""
        if event_type.startswith(RESERVED_EVENT_PREFIXES):
            return f"event type {event_type!r} is reserved for the platform"
        if self.publish_scopes is not None and not any(
            subscription_matches(scope, event_type) for scope in self.publish_scopes
        ):
            return f"this API key may not publish event type {event_type!r}"
        return None

    def public(self) -> dict[str, Any]:
        """What the CLI prints: never the secret, the API key hash or URL credentials."""
        return {
            "partnerId": self.id,
            "name": self.name,
            "webhookUrl": masked_url(self.webhook_url),
            "isActive": self.is_active,
            # header values are often the endpoint's own credentials: names only
            "headers": {name: MASK for name, _ in self.headers},
            "timeoutMs": self.timeout_ms,
            "rateLimit": self.rate_limit,
            "publishScopes": list(self.publish_scopes) if self.publish_scopes is not None else None,
            "receiveScopes": list(self.receive_scopes) if self.receive_scopes is not None else None,
            "apiKeyLegacy": self.api_key_legacy,
            "endpoint": self.health(),
            "createdAt": self.created_at.isoformat() if self.created_at else None,
            "updatedAt": self.updated_at.isoformat() if self.updated_at else None,
        }


@dataclass(frozen=True)
class NewPartner:
    """A created partner with its credentials: the only time they are shown."""

    partner: Partner
    api_key: str
    secret_key: str
    events: list[str] = field(default_factory=list)


def _iso(moment: datetime | None) -> str | None:
    return _aware(moment).isoformat() if moment else None


def _aware(moment: datetime) -> datetime:
    """MongoDB hands datetimes back naive (in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _maybe_aware(moment: datetime | None) -> datetime | None:
    return _aware(moment) if moment else None


def _is(kind: type) -> Callable[[Any], bool]:
    # bool is an int in Python, never in a document's schema
    return lambda value: isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def _secret_entry(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("secretKey"), str)
        and isinstance(value.get("expiresAt"), datetime)
    )


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


FieldTypes = dict[str, tuple[str, Callable[[Any], bool]]]  # field -> (what it must be, check)

# every partner field this service reads, with the type it must have (None counts as absent)
PARTNER_FIELDS: FieldTypes = {
    "name": ("a string", _is(str)),
    "webhookUrl": ("a string", _is(str)),
    "secretKey": ("a string", _is(str)),
    "apiKeyHash": ("a string", _is(str)),
    "apiKeyLegacy": ("a boolean", _is(bool)),
    "isActive": ("a boolean", _is(bool)),
    "createdAt": ("a date-time", _is(datetime)),
    "updatedAt": ("a date-time", _is(datetime)),
    "previousSecrets": ("a list of {secretKey, expiresAt}", _list_of(_secret_entry)),
    "headers": ("an object of strings", _string_map),
    "timeoutMs": ("an integer", _is(int)),
    "rateLimit": ("an integer", _is(int)),
    "pausedUntil": ("a date-time", _is(datetime)),
    "consecutiveFailures": ("an integer", _is(int)),
    "failingSince": ("a date-time", _is(datetime)),
    "endpointDisabledAt": ("a date-time", _is(datetime)),
    "endpointDisabledReason": ("a string", _is(str)),
    "publishScopes": ("a list of strings", _list_of(_is(str))),
    "receiveScopes": ("a list of strings", _list_of(_is(str))),
}


def wrong_types(doc: dict[str, Any], fields: FieldTypes) -> dict[str, str]:
    """The ``fields`` of a stored document that have the wrong type, each with what it should be."""
    found: dict[str, str] = {}
    for name, (expected, check) in fields.items():
        value = doc.get(name)
        if value is not None and not check(value):
            found[name] = f"{name} is {type(value).__name__}, not {expected}"
    return found


def document_problems(doc: dict[str, Any]) -> dict[str, str]:
    """The fields of a stored partner that have the wrong type, each with what it should be."""
    return wrong_types(doc, PARTNER_FIELDS)


def _to_partner(doc: dict[str, Any]) -> Partner:
    """The partner a document describes; a field of the wrong type is read as absent and
    named in ``problems`` (a legacy document must not break every read of the partners)."""
    bad = document_problems(doc)
    if bad:
        doc = {k: v for k, v in doc.items() if k not in bad}
    previous = tuple((p["secretKey"], _aware(p["expiresAt"])) for p in doc.get("previousSecrets") or [])
    return Partner(
        id=str(doc["_id"]),
        name=doc.get("name", ""),
        webhook_url=doc.get("webhookUrl", ""),
        is_active=doc.get("isActive") is True,
        secret_key=doc.get("secretKey", ""),
        previous_secrets=previous,
        created_at=_maybe_aware(doc.get("createdAt")),
        updated_at=_maybe_aware(doc.get("updatedAt")),
        headers=tuple(sorted((doc.get("headers") or {}).items())),
        timeout_ms=doc.get("timeoutMs"),
        rate_limit=doc.get("rateLimit"),
        paused_until=_maybe_aware(doc.get("pausedUntil")),
        consecutive_failures=int(doc.get("consecutiveFailures") or 0),
        failing_since=_maybe_aware(doc.get("failingSince")),
        disabled_at=_maybe_aware(doc.get("endpointDisabledAt")),
        disabled_reason=doc.get("endpointDisabledReason"),
        publish_scopes=tuple(doc["publishScopes"]) if doc.get("publishScopes") else None,
        receive_scopes=tuple(doc["receiveScopes"]) if doc.get("receiveScopes") else None,
        api_key_legacy=doc.get("apiKeyLegacy") is True,
        problems=tuple(bad.values()),
    )
