"""The service layer's typed inputs: request bodies and queries as pydantic models.

The HTTP API validates bodies against these (Powertools ``enable_validation``) and the CLI
builds the same models, so both refuse the same input with the same words.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ..delivery.schedule import MAX_WAIT_SECONDS, MAX_WAITS, MIN_WAIT_SECONDS, RetrySchedule
from ..dispatch.filters import FilterError, format_loc, parse_filter
from ..models import SubscriptionPattern
from ..partners.urls import MASK
from ..store.delivery_log import StatusFilter

# characters a name may not hold: C0 and C1 controls (NUL, ESC, ...; a name reaches
# terminals, logs and the console) and the bidi embeddings, overrides, isolates and marks
# that make a name display as another (U+061C, U+200E/F, U+202A-E, U+2066-9)
# (as escapes, so the OpenAPI document's pattern below holds no raw control characters)
NAME_FORBIDDEN_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
NAME_FORBIDDEN = re.compile(f"[{NAME_FORBIDDEN_CHARACTERS}]")


def _plain_name(value: str) -> str:
    found = NAME_FORBIDDEN.search(value)
    if found:
        raise ValueError(
            f"must not contain control or bidirectional-override characters (found U+{ord(found[0]):04X})"
        )
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_plain_name),
    # the same rule in the OpenAPI document, so clients (and schemathesis) know it; the
    # validator above, not a pattern, answers with words that name the character
    Field(json_schema_extra={"pattern": f"^[^{NAME_FORBIDDEN_CHARACTERS}]*$"}),
]
Url = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=8,
        max_length=2048,
        # a host, and no control characters anywhere (they are not URL characters)
        pattern=r"^https?://[^\x00-\x20\x7f/]+[^\x00-\x1f\x7f]*$",
    ),
]
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _iso_datetime(value: Any) -> Any:
    # pydantic would also take "0" or 1700000000 as a time; an API that documents
    # date-time accepts only that
    if value is not None and not (isinstance(value, str | datetime) and ISO_DATE.match(str(value))):
        raise ValueError("must be an ISO-8601 date-time, e.g. 2026-11-28T12:00:00Z")
    return value


def _utc(value: datetime | None) -> datetime | None:
    """The moment in UTC; one that UTC cannot hold (year 0 or 10000 there) is a 400, not a 500."""
    if value is None:
        return None
    try:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    except OverflowError:
        raise ValueError("date-time out of range") from None


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# RFC 9110 field names (tokens); values of visible ASCII with inner spaces or tabs, no
# leading or trailing whitespace (requests refuses those, quoting the value in its error)
HeaderName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")]
HeaderValue = Annotated[
    str, StringConstraints(max_length=2000, pattern=r"^([\x21-\x7e]([\x20-\x7e\t]*[\x21-\x7e])?)?$")
]
# what the platform sets, and hop-by-hop and framing headers: a partner header may not
# set any of them. Compared with "_" read as "-": WSGI servers merge the two spellings.
RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "host",
        "user-agent",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-authorization",
        "proxy-connection",
    }
)
RESERVED_HEADER_PREFIXES = ("x-recart-", "webhook-", "proxy-")
# the document says what the validator enforces: only names of that pattern, at most 20
CustomHeaders = Annotated[
    dict[HeaderName, HeaderValue],
    Field(json_schema_extra={"additionalProperties": False, "maxProperties": 20}),
]


def _custom_headers(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > 20:
        raise ValueError("at most 20 custom headers")
    normal = {name: name.lower().replace("_", "-") for name in value}
    reserved = [
        n for n, low in normal.items() if low in RESERVED_HEADERS or low.startswith(RESERVED_HEADER_PREFIXES)
    ]
    if reserved:
        raise ValueError(f"reserved header(s) cannot be set: {', '.join(sorted(reserved))}")
    if len(set(normal.values())) < len(normal):
        raise ValueError("header names must differ other than in case and '_' / '-'")
    masked = sorted(name for name, header in value.items() if header == MASK)
    if masked:
        # what a read answers for every header value: sent back, it would replace the real one
        raise ValueError(
            f"{', '.join(masked)}: the value looks masked as the API shows it ({MASK}); send the real value"
        )
    return value


# one set of bounds for creating and updating a partner
TimeoutMs = Annotated[int, Field(ge=100, le=30_000)]
RateLimit = Annotated[int, Field(ge=1, le=100_000)]


PublishScopes = Annotated[
    list[SubscriptionPattern],
    Field(
        min_length=1,
        max_length=100,
        description="event types (exact or `prefix.*`) this partner's API key may publish; "
        "absent or null: any but the platform's own (`endpoint.*`, `message.attempt.*`, `webhook.*`)",
    ),
]
ReceiveScopes = Annotated[
    list[SubscriptionPattern],
    Field(
        min_length=1,
        max_length=100,
        description="event types (exact, `prefix.*` or `*`) the partner may subscribe its endpoints "
        "to itself (its API key or a portal token); absent or null: any event type. The "
        "platform's own (`endpoint.*`, `message.attempt.*`, `webhook.*`) "
        "are always allowed; the operator's routes are not limited",
    ),
]


class PartnerCreate(_Body):
    name: Name
    webhookUrl: Url
    events: list[SubscriptionPattern] = Field(default_factory=list, max_length=100)
    headers: CustomHeaders | None = None
    timeoutMs: TimeoutMs | None = None
    rateLimit: RateLimit | None = Field(None, description="deliveries per second; null: unlimited")
    publishScopes: PublishScopes | None = None
    receiveScopes: ReceiveScopes | None = None

    _headers = field_validator("headers")(_custom_headers)


class PartnerUpdate(_Body):
    name: Name | None = None
    webhookUrl: Url | None = None
    isActive: StrictBool | None = None  # "false" as a string is an error, not a deactivation
    headers: CustomHeaders | None = None
    timeoutMs: TimeoutMs | None = None
    rateLimit: RateLimit | None = Field(None, description="deliveries per second; null removes the limit")
    publishScopes: PublishScopes | None = Field(None, description="null removes the scopes")
    receiveScopes: ReceiveScopes | None = Field(
        None, description="null removes the scopes: the partner may subscribe its endpoints to any type"
    )

    _headers = field_validator("headers")(_custom_headers)


class EventPatterns(_Body):
    events: list[SubscriptionPattern] = Field(min_length=1, max_length=100)


class Rotation(_Body):
    overlapHours: float | None = Field(
        None, ge=0, le=720, description="how long the old secret still signs; default SECRET_OVERLAP_HOURS"
    )


class KeyRotation(_Body):
    overlapHours: float = Field(
        0, ge=0, le=720, description="how long the old API key still works; default 0: refused at once"
    )


class ReplayRequest(_Body):
    eventId: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    force: StrictBool = Field(
        False,
        description="send even if the partner is not subscribed to the event's type "
        "(without it such a replay is refused: a mistyped partner id must not leak an event)",
    )


class OwnReplayRequest(_Body):
    """A partner's replay of its own event (no ``force``: only what it is owed)."""

    eventId: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class RecoverRequest(_Body):
    since: datetime

    _iso = field_validator("since", mode="before")(_iso_datetime)
    _in_utc = field_validator("since")(_utc)


class EventTypeRegistration(_Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    json_schema: dict[str, Any] = Field(
        alias="schema",
        description="JSON Schema (2020-12) for the events' data",
        # any JSON object, its numbers I-JSON like every body this API reads
        json_schema_extra={"additionalProperties": {"$ref": "#/components/schemas/JsonValue"}},
    )
    description: Annotated[str, StringConstraints(max_length=1000)] = ""


class DeliveryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo such as ?stauts=failed is an error, not ignored
    status: StatusFilter | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{24}$")] | None = None
    limit: int = Field(50, ge=1, le=200)
    eventId: str | None = None
    endpointId: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None

    _dates = field_validator("since", "until", mode="before")(_iso_datetime)
    _in_utc = field_validator("since", "until")(_utc)


# portal tokens: short-lived, so a link that leaks (a chat, a ticket) stops working soon
PORTAL_TOKEN_DEFAULT_SECONDS = 3600
PORTAL_TOKEN_MIN_SECONDS = 1  # a link for one quick look, or a test of the expiry
PORTAL_TOKEN_MAX_SECONDS = 86_400


class PortalTokenRequest(_Body):
    ttlSeconds: int = Field(
        PORTAL_TOKEN_DEFAULT_SECONDS,
        ge=PORTAL_TOKEN_MIN_SECONDS,
        le=PORTAL_TOKEN_MAX_SECONDS,
        description="how long the token signs the partner in (default 1 h, at most 24 h)",
    )


# endpoints (webhooks.endpoints): one set of bounds for creating and updating one

Description = Annotated[str, StringConstraints(max_length=500)]
EndpointEvents = Annotated[list[SubscriptionPattern], Field(min_length=1, max_length=100)]


def _checked_filter(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """A filter is validated (and its size and depth bounded) when it is set, not when an
    event meets it: the FilterError names the path of the first problem."""
    if value is not None:
        try:
            parse_filter(value)
        except FilterError as exc:
            # "filter: data.value.$gte: must be ...": the path below the field pydantic names
            inner = format_loc(exc.loc[1:]) if len(exc.loc) > 1 else "the filter"
            detail = {"where": inner, "reason": exc.reason}
            raise PydanticCustomError("event_filter", "{where}: {reason}", detail) from None
    return value


def _checked_schedule(value: list[int] | None) -> list[int] | None:
    if value is not None:
        RetrySchedule.model_validate(value)
    return value


EndpointFilter = Annotated[
    dict[str, Any],
    Field(
        description="matched against the event ({eventId, eventType, timestamp, data}); operators "
        "$eq $neq $in $nin $gt $gte $lt $lte $exists $or $and",
        examples=[{"data": {"value": {"$gte": 100}}}],
    ),
]
Schedule = Annotated[
    list[int],
    Field(
        description="seconds between attempts (attempts: its length + 1): 1 to 30 waits, each "
        "1 s to 7 days, at most 30 days in all",
        examples=[[5, 300, 1800, 7200, 18000, 36000, 36000]],
        # the bounds RetrySchedule checks, for clients (its words answer a bad one)
        json_schema_extra={
            "minItems": 1,
            "maxItems": MAX_WAITS,
            "items": {"type": "integer", "minimum": MIN_WAIT_SECONDS, "maximum": MAX_WAIT_SECONDS},
        },
    ),
]


class EndpointCreate(_Body):
    url: Url
    events: EndpointEvents
    filter: EndpointFilter | None = None
    headers: CustomHeaders | None = None
    retrySchedule: Schedule | None = None
    rateLimitPerSecond: RateLimit | None = Field(None, description="deliveries per second; null: unlimited")
    timeoutMs: TimeoutMs | None = None
    description: Description | None = None

    _headers = field_validator("headers")(_custom_headers)
    _filter = field_validator("filter")(_checked_filter)
    _schedule = field_validator("retrySchedule")(_checked_schedule)


def _not_null(schema: dict[str, Any]) -> None:
    """The field's JSON Schema without its null: it may be left out, not sent as null."""
    kinds = schema.pop("anyOf", None)
    if kinds:
        schema.update(next(k for k in kinds if k.get("type") != "null"))
    schema.pop("default", None)


class EndpointUpdate(_Body):
    """Absent: unchanged. null: removed (filter, headers, retrySchedule, rateLimitPerSecond,
    timeoutMs, description); url and events cannot be null."""

    url: Url | None = Field(None, json_schema_extra=_not_null)
    events: EndpointEvents | None = Field(None, json_schema_extra=_not_null)
    filter: EndpointFilter | None = None
    headers: CustomHeaders | None = None
    retrySchedule: Schedule | None = None
    rateLimitPerSecond: RateLimit | None = None
    timeoutMs: TimeoutMs | None = None
    description: Description | None = None

    _headers = field_validator("headers")(_custom_headers)
    _filter = field_validator("filter")(_checked_filter)
    _schedule = field_validator("retrySchedule")(_checked_schedule)

    @model_validator(mode="after")
    def _required_stay(self) -> EndpointUpdate:
        for name in ("url", "events"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self
