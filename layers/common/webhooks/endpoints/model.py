"""An endpoint as the code sees it (:class:`Endpoint`), what the API shows of it, and how a
stored document is read.

A partner's first endpoint is the partner document itself (``webhookUrl``, ``secretKey``,
``headers``, its health fields and its subscriptions without an ``endpointId``): the Node
service's documents, wire format and every partner route keep working, and there is one
source of truth for that URL and secret. Its id is derived from the partner's
(:func:`first_endpoint_id`). Every other endpoint is a document in ``endpoints`` with the
same field names for what they share, so health, pauses and rotation are the same update on
either collection.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..errors import NotFound
from ..partners.model import (
    PARTNER_FIELDS,
    DestinationState,
    Partner,
    _aware,
    _is,
    _list_of,
    document_problems,
    wrong_types,
)
from ..partners.urls import MASK, masked_url

ENDPOINT_ID_PREFIX = "ep_"


class EndpointNotFound(NotFound):
    def __init__(self, endpoint_id: str = "") -> None:
        super().__init__("Endpoint not found")
        self.endpoint_id = endpoint_id


def first_endpoint_id(partner_id: str) -> str:
    """The id of the endpoint a partner's own document describes."""
    return f"{ENDPOINT_ID_PREFIX}{partner_id}"


def new_endpoint_id() -> str:
    # 20 random bytes: never one of first_endpoint_id's (an ObjectId is 12 bytes)
    return ENDPOINT_ID_PREFIX + secrets.token_hex(20)


@dataclass(frozen=True)
class Endpoint(DestinationState):
    """Where one partner's webhooks go. ``is_active`` and ``name`` are the partner's: an
    inactive partner's endpoints receive nothing."""

    id: str
    partner_id: str
    name: str  # the partner's name
    is_active: bool  # the partner's
    webhook_url: str
    secret_key: str
    first: bool  # the partner document's own endpoint
    previous_secrets: tuple[tuple[str, datetime], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    timeout_ms: int | None = None
    rate_limit: int | None = None
    paused_until: datetime | None = None
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    filter: dict[str, Any] | None = None
    retry_schedule: tuple[int, ...] | None = None
    description: str | None = None
    events: tuple[str, ...] = ()  # filled where subscriptions were read with it
    created_at: datetime | None = None
    updated_at: datetime | None = None
    problems: tuple[str, ...] = ()

    def public(self, parked: int | None = None) -> dict[str, Any]:
        """What the API shows: never the secret, header values or URL credentials."""
        health = self.health()
        if parked is not None:
            health["parkedDeliveries"] = parked
        return {
            "endpointId": self.id,
            "partnerId": self.partner_id,
            "url": masked_url(self.webhook_url),
            "description": self.description,
            "events": list(self.events),
            "filter": self.filter,
            "headers": {name: MASK for name, _ in self.headers},
            "retrySchedule": list(self.retry_schedule) if self.retry_schedule is not None else None,
            "rateLimitPerSecond": self.rate_limit,
            "timeoutMs": self.timeout_ms,
            "first": self.first,
            "health": health,
            "createdAt": _iso(self.created_at),
            "updatedAt": _iso(self.updated_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return _aware(moment).isoformat() if moment else None


def _maybe_aware(moment: datetime | None) -> datetime | None:
    return _aware(moment) if moment else None


# the fields an endpoints document (or a partner document, for its first endpoint) adds
ENDPOINT_FIELDS = {
    **{
        k: v
        for k, v in PARTNER_FIELDS.items()
        if k not in ("name", "apiKeyHash", "apiKeyLegacy", "publishScopes")
    },
    "url": ("a string", _is(str)),
    "filter": ("an object", _is(dict)),
    "endpointFilter": ("an object", _is(dict)),
    "retrySchedule": ("a list of integers", _list_of(_is(int))),
    "description": ("a string", _is(str)),
    "endpointDescription": ("a string", _is(str)),
}


def endpoint_problems(doc: dict[str, Any]) -> dict[str, str]:
    """The fields of a stored endpoint that have the wrong type, each with what it should be."""
    return wrong_types(doc, ENDPOINT_FIELDS)


def _health(doc: dict[str, Any]) -> dict[str, Any]:
    """What both kinds of document hold under the same names."""
    previous = tuple((p["secretKey"], _aware(p["expiresAt"])) for p in doc.get("previousSecrets") or [])
    return {
        "secret_key": doc.get("secretKey", ""),
        "previous_secrets": previous,
        "headers": tuple(sorted((doc.get("headers") or {}).items())),
        "timeout_ms": doc.get("timeoutMs"),
        "rate_limit": doc.get("rateLimit"),
        "paused_until": _maybe_aware(doc.get("pausedUntil")),
        "consecutive_failures": int(doc.get("consecutiveFailures") or 0),
        "failing_since": _maybe_aware(doc.get("failingSince")),
        "disabled_at": _maybe_aware(doc.get("endpointDisabledAt")),
        "disabled_reason": doc.get("endpointDisabledReason"),
        "created_at": _maybe_aware(doc.get("createdAt")),
        "updated_at": _maybe_aware(doc.get("updatedAt")),
    }


# the fields named differently in the two homes: (the partner document's, an endpoints
# document's); the store writes through the same table (API field -> document fields)
DOCUMENT_FIELDS = {
    "url": ("webhookUrl", "url"),
    "headers": ("headers", "headers"),
    "filter": ("endpointFilter", "filter"),
    "retrySchedule": ("retrySchedule", "retrySchedule"),
    "rateLimitPerSecond": ("rateLimit", "rateLimit"),
    "timeoutMs": ("timeoutMs", "timeoutMs"),
    "description": ("endpointDescription", "description"),
}


def first_endpoint(partner_doc: dict[str, Any], partner: Partner, events: tuple[str, ...] = ()) -> Endpoint:
    """The endpoint a partner document describes (its fields of the wrong type read as absent)."""
    bad = {**document_problems(partner_doc), **endpoint_problems(partner_doc)}
    return _endpoint(partner_doc, bad, partner, events, first=True)


def other_endpoint(doc: dict[str, Any], partner: Partner, events: tuple[str, ...] = ()) -> Endpoint:
    """An endpoint from its own document in ``endpoints``."""
    return _endpoint(doc, endpoint_problems(doc), partner, events, first=False)


def _endpoint(
    doc: dict[str, Any], bad: dict[str, str], partner: Partner, events: tuple[str, ...], *, first: bool
) -> Endpoint:
    column = 0 if first else 1
    doc = {k: v for k, v in doc.items() if k not in bad}
    schedule = doc.get("retrySchedule")
    return Endpoint(
        id=first_endpoint_id(partner.id) if first else str(doc["_id"]),
        partner_id=partner.id,
        name=partner.name,
        is_active=partner.is_active,
        webhook_url=doc.get(DOCUMENT_FIELDS["url"][column], ""),
        first=first,
        filter=doc.get(DOCUMENT_FIELDS["filter"][column]),
        retry_schedule=tuple(schedule) if schedule else None,
        description=doc.get(DOCUMENT_FIELDS["description"][column]),
        events=events,
        problems=tuple(bad.values()),
        **_health(doc),
    )
