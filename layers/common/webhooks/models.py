"""Pydantic models at the system's boundaries: the API input, queue messages, the webhook body.

Queue messages carry a ``version`` so a consumer refuses a format it does not know
instead of misreading it.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, with_config
from typing_extensions import TypedDict

from .json_stringify import stringify

EVENT_TYPE_PATTERN = r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$"
SUBSCRIPTION_PATTERN = r"^(\*|[a-z0-9_-]+(\.[a-z0-9_-]+)*(\.\*)?)$"

EventType = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=200, pattern=EVENT_TYPE_PATTERN)
]
SubscriptionPattern = Annotated[
    str, StringConstraints(strict=True, min_length=1, max_length=200, pattern=SUBSCRIPTION_PATTERN)
]


# A TypedDict validated by ``events_in``, not a model: ingest validates up to 100 of these
# per request, and pydantic validates into plain dicts in half the time it builds models.
@with_config(ConfigDict(extra="ignore"))
class EventIn(TypedDict):
    """One event as a producer posts it."""

    eventType: Annotated[EventType, Field(examples=["order.created"])]
    data: Annotated[dict[str, Any], Field(strict=True, examples=[{"orderId": "1234", "total": 99.9}])]


events_in: TypeAdapter[list[EventIn]] = TypeAdapter(list[EventIn])


class AcceptedEvent(TypedDict):
    """An accepted event as ingest enqueues it (``Event``'s fields, as a plain dict)."""

    eventId: str
    eventType: str
    timestamp: str
    data: dict[str, Any]


class Event(BaseModel):
    """An accepted event: what dispatch fans out and partners receive."""

    eventId: str
    eventType: str
    timestamp: str
    data: dict[str, Any]


def new_event_id() -> str:
    return "event_" + secrets.token_hex(12)


def new_event_ids(count: int) -> list[str]:
    """``count`` ids as :func:`new_event_id` makes them, from one read of the OS's CSPRNG."""
    if count <= 0:
        return []
    # a space between ids (bytes.hex's separator, every 12 bytes), then the prefix put
    # before each by one replace: no Python-level loop over the ids
    spaced = secrets.token_bytes(12 * count).hex(" ", 12)
    return ("event_" + spaced.replace(" ", " event_")).split(" ")


def utc_timestamp(moment: datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``, as JavaScript's ``toISOString`` writes it."""
    moment = moment or datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class EventEnvelope(BaseModel):
    """Events queue message: one API request's events, enqueued together.

    ``endpoints`` restricts fan-out of an event to the listed ``[partnerId, endpointId]``
    pairs (endpointId null: the partner's first endpoint); dispatch sets it when it
    re-enqueues the part of an envelope it could not finish, so endpoints that already have
    their delivery message do not get a second one. ``partners`` is the same for a remainder
    written before endpoints existed: its partner ids mean their first endpoints. A remainder
    owed to first endpoints only carries both (``endpoints`` wins), so a dispatcher rolled
    back to before endpoints, which knows only ``partners``, reads it right.
    """

    version: Literal[1] = 1
    source: str | None = None
    events: list[Event] = Field(min_length=1)
    partners: dict[str, list[str]] | None = None
    endpoints: dict[str, list[tuple[str, str | None]]] | None = None
    # set on a re-enqueued remainder: its re-enqueues so far and when the first envelope was
    # accepted (epoch seconds), for dispatch's bounds on loops (webhooks.queues.loop_bound)
    hops: int | None = Field(default=None, ge=0)
    acceptedAt: float | None = None

    def owed(self) -> dict[str, list[tuple[str, str | None]]] | None:
        """A remainder's (partner id, endpoint id) pairs still owed, per event id; None for an
        envelope dispatch has not worked on (every subscribed endpoint is owed)."""
        if self.endpoints is not None:
            return self.endpoints
        if self.partners is not None:
            return {event_id: [(p, None) for p in ids] for event_id, ids in self.partners.items()}
        return None


class DeliveryMessage(BaseModel):
    """Delivery queue message: one event for one endpoint of a partner. Never carries the secret."""

    version: Literal[1] = 1
    partnerId: str
    # which of the partner's endpoints; None: its first (the partner document's own URL), as
    # every message written before endpoints existed means
    endpointId: str | None = None
    event: Event
    # POSTs made before this message was sent: a retry, or a delivery deferred by flow
    # control, is re-sent as a new message carrying its count (SQS's receive count is not one)
    priorAttempts: int = Field(default=0, ge=0)
    # the wall-clock second (epoch) in which this delivery holds a slot of the partner's
    # rate limit: set when it was deferred for the limit, so it is not counted twice
    rateSlot: int | None = None
    # the earliest time (epoch seconds) of its next POST: a retry's backoff or a deferral's
    # wait; a copy received sooner waits on without a POST (webhooks.delivery.flow_control)
    notBefore: float | None = None
    # re-sends so far, by dispatch and deliver, and when the delivery was accepted (epoch
    # seconds; unset: the SentTimestamp of its first message), for the bounds on loops
    hops: int = Field(default=0, ge=0)
    acceptedAt: float | None = None

    def as_body(self) -> str:
        # a first endpoint's message is byte for byte what it was before endpoints existed
        return to_json(self.model_dump(exclude={"endpointId"} if self.endpointId is None else None))

    def attributes(self) -> dict[str, object]:
        """What the queues show of a delivery without reading its body (and the DLQ keeps)."""
        return {
            "partnerId": self.partnerId,
            "endpointId": self.endpointId,
            "eventId": self.event.eventId,
            "eventType": self.event.eventType,
        }


class IngestResult(BaseModel):
    eventId: str | None = None
    eventType: str
    status: Literal["success", "failed"]
    error: str | None = None


class IngestResponse(BaseModel):
    message: str
    results: list[IngestResult]


class ErrorResponse(BaseModel):
    error: str


# what SQS refuses in a message body (it takes #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and
# above): lone surrogates and U+FFFE/U+FFFF; JSON escapes the control characters itself
_SQS_REFUSED = re.compile("[\ud800-\udfff\ufffe\uffff]")


def to_json(value: Any) -> str:
    """Compact JSON for queue messages, UTF-8 as it came: only what SQS refuses is escaped.

    Escaping every non-ASCII character (``ensure_ascii``) made text in other scripts 2-3x
    larger on the queue, so events well under the message size limit were refused.
    orjson writes it (a 100-event envelope: 14 us against the json module's 210); what it
    will not write (lone surrogates, integers beyond 64 bits) goes through the json module.
    """
    try:
        text = orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if text.isascii():  # nothing SQS refuses, and far quicker to tell than the scan below
        return text
    return _SQS_REFUSED.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def webhook_body(event: Event) -> bytes:
    """The exact bytes a partner receives and every signature covers.

    Keys in the order ``eventId, eventType, timestamp, data``; non-ASCII characters
    written as-is, numbers as JavaScript prints them (``100``, not ``100.0``) and array-index
    keys first, as ``JSON.stringify`` wrote the Node service's (:mod:`.json_stringify`). A
    string that cannot be UTF-8 encoded (a lone surrogate) falls back to ``\\u`` escapes so
    the body is still valid JSON.
    """
    payload = {
        "eventId": event.eventId,
        "eventType": event.eventType,
        "timestamp": event.timestamp,
        "data": event.data,
    }
    try:
        return stringify(payload).encode("utf-8")
    except UnicodeEncodeError:
        return stringify(payload, ensure_ascii=True).encode("utf-8")
