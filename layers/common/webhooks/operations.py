"""Partner operations: the management API (admin), the partner-scoped delivery log, replay.

Every operation returns a :class:`Reply`; the ingest handler routes HTTP to these methods
and the CLI calls the same methods directly. Replays and test events go through the
normal delivery path: a delivery message on the delivery queue.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pymongo.errors import DuplicateKeyError, PyMongoError

from .catalog import EventTypeCatalog, InvalidSchema
from .config import Settings
from .delivery_log import BadCursor, DeliveryLog, EventStore, StatusFilter
from .endpoint_health import ParkedDeliveries
from .events_api import BodyError, Reply, format_errors, parse_json
from .models import (
    DeliveryMessage,
    Event,
    EventType,
    SubscriptionPattern,
    new_event_id,
    utc_timestamp,
)
from .observability import logger
from .partners import NewPartner, Partner, PartnerNotFound, PartnerStore
from .queues import OutgoingMessage, Queue, send_all
from .throttle import FailureThrottle
from .urls import url_problem

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Url = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=8, max_length=2048, pattern=r"^https?://[^\s/]+")
]
TEST_EVENT_TYPE = "webhook.test"
PARKED_PAGE = 500
PARKED_PER_REQUEST = 5_000
RECOVER_PER_REQUEST = 1_000  # one request stays well inside API Gateway's 29 s; call again for more
_event_type: TypeAdapter[str] = TypeAdapter(EventType)
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
        "absent or null: any but the platform's own (`endpoint.*`, `webhook.*`)",
    ),
]


class PartnerCreate(_Body):
    name: Name
    webhookUrl: Url
    events: list[SubscriptionPattern] = Field(default_factory=list, max_length=100)
    headers: dict[HeaderName, HeaderValue] | None = None
    timeoutMs: TimeoutMs | None = None
    rateLimit: RateLimit | None = Field(None, description="deliveries per second; null: unlimited")
    publishScopes: PublishScopes | None = None

    _headers = field_validator("headers")(_custom_headers)


class PartnerUpdate(_Body):
    name: Name | None = None
    webhookUrl: Url | None = None
    isActive: StrictBool | None = None  # "false" as a string is an error, not a deactivation
    headers: dict[HeaderName, HeaderValue] | None = None
    timeoutMs: TimeoutMs | None = None
    rateLimit: RateLimit | None = Field(None, description="deliveries per second; null removes the limit")
    publishScopes: PublishScopes | None = Field(None, description="null removes the scopes")

    _headers = field_validator("headers")(_custom_headers)


class EventPatterns(_Body):
    events: list[SubscriptionPattern] = Field(min_length=1, max_length=100)


class Rotation(_Body):
    overlapHours: float | None = Field(
        None, ge=0, le=720, description="how long the old secret still signs; default SECRET_OVERLAP_HOURS"
    )


class ReplayRequest(_Body):
    eventId: Annotated[str, StringConstraints(min_length=1, max_length=100)]


class RecoverRequest(_Body):
    since: datetime

    _iso = field_validator("since", mode="before")(_iso_datetime)
    _in_utc = field_validator("since")(_utc)


class EventTypeRegistration(_Body):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    json_schema: dict[str, Any] = Field(
        alias="schema", description="JSON Schema (2020-12) for the events' data"
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

    _dates = field_validator("since", "until", mode="before")(_iso_datetime)
    _in_utc = field_validator("since", "until")(_utc)


def _error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message})


def _invalid(detail: str) -> Reply:
    """The events API's 400 wording, without its producer metrics (an operator's typo is
    not a rejected event)."""
    return _error(400, f"Invalid request body. Errors: {detail}")


def _parse(model: type[BaseModel], body: str | None, allow_empty: bool = False) -> BaseModel | Reply:
    try:
        raw = parse_json(body) if body else ({} if allow_empty else parse_json(""))
        return model.model_validate(raw)
    except BodyError as exc:
        return _invalid(f"{exc.where}: {exc}")
    except ValidationError as exc:
        return _invalid(format_errors(exc))


def _query(params: Mapping[str, str] | None) -> DeliveryQuery | Reply:
    try:
        return DeliveryQuery.model_validate(dict(params or {}))
    except ValidationError as exc:
        return _error(400, f"Invalid query. Errors: {format_errors(exc)}")


class Operations:
    def __init__(
        self,
        settings: Settings,
        store: PartnerStore,
        log: DeliveryLog,
        events: EventStore,
        delivery_queue: Queue | None,
        catalog: EventTypeCatalog | None = None,
        parked: ParkedDeliveries | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.log = log
        self.events = events
        self.delivery_queue = delivery_queue
        self.catalog = catalog
        self.parked = parked
        self.admin_failures = FailureThrottle(limit=settings.admin_auth_max_failures)

    # --- credentials ----------------------------------------------------------------

    def check_admin(self, admin_key: str | None, source: str = "unknown") -> Reply | None:
        """None when ``admin_key`` is the admin credential; otherwise the refusal.

        Failures are logged with the source address and throttled per source.
        """
        expected = self.settings.admin_key_hash
        if not expected:
            return _error(403, "The admin API is not enabled (set ADMIN_API_KEY_HASH)")
        if not admin_key:
            return _error(401, "Admin key is required (X-Admin-Key)")
        wait = self.admin_failures.blocked_for(source)
        if wait > 0:
            logger.warning("admin key attempts throttled", extra={"source_ip": source})
            return Reply(
                429,
                {"error": f"Too many failed admin key attempts; retry in {math.ceil(wait)} s"},
                {"Retry-After": str(math.ceil(wait))},
            )
        given = hashlib.sha256(admin_key.encode("utf-8", "surrogatepass")).hexdigest()
        if not hmac.compare_digest(given, expected):
            self.admin_failures.failed(source)
            logger.warning("admin key refused", extra={"source_ip": source})
            return _error(401, "Invalid admin key")
        return None

    # --- partners -------------------------------------------------------------------

    def _view(self, partner: Partner) -> dict[str, Any]:
        return {**partner.public(), "events": self.store.subscriptions_of(partner.id)}

    def create_partner(self, body: str | None) -> Reply:
        parsed = _parse(PartnerCreate, body)
        if isinstance(parsed, Reply):
            return parsed
        assert isinstance(parsed, PartnerCreate)
        refused = self._url_refused(parsed.webhookUrl)
        if refused:
            return refused
        try:
            created = self.store.create(parsed.name, parsed.webhookUrl, parsed.events)
        except DuplicateKeyError:
            return _error(409, "A partner with that API key exists")
        if any(
            v is not None for v in (parsed.headers, parsed.timeoutMs, parsed.rateLimit, parsed.publishScopes)
        ):
            try:
                partner = self.store.update(
                    created.partner.id,
                    headers=parsed.headers,
                    timeout_ms=parsed.timeoutMs,
                    rate_limit=parsed.rateLimit,
                    publish_scopes=parsed.publishScopes,
                )
            except PyMongoError:  # the caller never sees this key: the partner must not stay
                self.store.remove_unannounced(created.partner.id)
                raise
            created = NewPartner(partner, created.api_key, created.secret_key, created.events)
        logger.info("partner created", extra={"partner_id": created.partner.id})
        return Reply(
            201, {**self._view(created.partner), "apiKey": created.api_key, "secretKey": created.secret_key}
        )

    def _url_refused(self, url: str) -> Reply | None:
        problem = url_problem(url, self.settings.allow_private_destinations)
        return _invalid(f"webhookUrl: {problem}") if problem else None

    def list_partners(self) -> Reply:
        return Reply(200, {"partners": [self._view(p) for p in self.store.all()]})

    def get_partner(self, partner_id: str) -> Reply:
        def get() -> Reply:
            view = self._view(self.store.get(partner_id))
            if self.parked is not None:
                view["endpoint"]["parkedDeliveries"] = self.parked.count(partner_id)
            return Reply(200, view)

        return self._found(get)

    def update_partner(self, partner_id: str, body: str | None) -> Reply:
        parsed = _parse(PartnerUpdate, body)
        if isinstance(parsed, Reply):
            return parsed
        assert isinstance(parsed, PartnerUpdate)
        refused = self._url_refused(parsed.webhookUrl) if parsed.webhookUrl else None
        if refused:
            return refused
        # a null rateLimit / publishScopes in the body removes it; an absent one leaves it
        rate_limit = (parsed.rateLimit or 0) if "rateLimit" in parsed.model_fields_set else None
        scopes = (parsed.publishScopes or []) if "publishScopes" in parsed.model_fields_set else None
        return self._found(
            lambda: Reply(
                200,
                self._view(
                    self.store.update(
                        partner_id,
                        name=parsed.name,
                        webhook_url=parsed.webhookUrl,
                        is_active=parsed.isActive,
                        headers=parsed.headers,
                        timeout_ms=parsed.timeoutMs,
                        rate_limit=rate_limit,
                        publish_scopes=scopes,
                    )
                ),
            )
        )

    def enable_endpoint(self, partner_id: str) -> Reply:
        """Enable a disabled endpoint and send it what was parked meanwhile, oldest first."""
        if self.parked is None or self.delivery_queue is None:
            return _error(503, "Enabling endpoints is not available here (no DELIVERY_QUEUE_URL)")
        parked, queue = self.parked, self.delivery_queue

        def enable() -> Reply:
            # enabled before the parked deliveries are read: a deliverer parking one right
            # now re-reads the partner after parking and delivers it itself
            partner = self.store.enable_endpoint(partner_id)
            replayed: list[str] = []
            failed: list[str] = []
            while len(replayed) < PARKED_PER_REQUEST and not failed:
                page = list(parked.oldest(partner.id, PARKED_PAGE))
                if not page:
                    break
                sent, failed = _send(queue, partner, [m.event for _, m in page], "parked")
                done = set(sent)
                parked.remove([key for key, m in page if m.event.eventId in done])
                replayed += sent
            logger.info("endpoint enabled", extra={"partner_id": partner.id, "replayed": len(replayed)})
            remaining = parked.count(partner.id)
            status = 503 if failed and not replayed else (207 if failed else 200)
            return Reply(
                status,
                {
                    **self._view(partner),
                    "replayed": len(replayed),
                    "remainingParked": remaining,
                    **({"error": "the delivery queue refused some parked deliveries"} if failed else {}),
                },
            )

        return self._found(enable)

    def rotate_secret(self, partner_id: str, body: str | None) -> Reply:
        parsed = _parse(Rotation, body, allow_empty=True)
        if isinstance(parsed, Reply):
            return parsed
        assert isinstance(parsed, Rotation)
        hours = parsed.overlapHours if parsed.overlapHours is not None else self.settings.secret_overlap_hours

        def rotate() -> Reply:
            secret = self.store.rotate_secret(partner_id, timedelta(hours=hours))
            return Reply(
                200, {"partnerId": partner_id, "secretKey": secret, "previousSecretValidHours": hours}
            )

        return self._found(rotate)

    def delete_partner(self, partner_id: str) -> Reply:
        def delete() -> Reply:
            self.store.delete(partner_id)
            return Reply(200, {"deleted": partner_id})

        return self._found(delete)

    def subscriptions(self, partner_id: str, body: str | None = None, change: str | None = None) -> Reply:
        if change is not None:
            parsed = _parse(EventPatterns, body)
            if isinstance(parsed, Reply):
                return parsed
            assert isinstance(parsed, EventPatterns)
            patterns = parsed.events
        else:
            patterns = []

        def apply() -> Reply:
            self.store.get(partner_id)  # 404 for an unknown partner
            if change == "add":
                self.store.subscribe(partner_id, patterns)
            elif change == "remove":
                self.store.unsubscribe(partner_id, patterns)
            return Reply(200, {"partnerId": partner_id, "events": self.store.subscriptions_of(partner_id)})

        return self._found(apply)

    # --- event type catalog ------------------------------------------------------------

    def _catalog(self) -> EventTypeCatalog:
        if self.catalog is None:
            raise RuntimeError("no event type catalog configured")
        return self.catalog

    def list_event_types(self) -> Reply:
        return Reply(200, {"eventTypes": self._catalog().all()})

    def get_event_type(self, name: str) -> Reply:
        found = self._catalog().get(name)
        return Reply(200, found) if found else _error(404, f"Event type {name!r} is not registered")

    def register_event_type(self, name: str, body: str | None) -> Reply:
        try:
            _event_type.validate_python(name)
        except ValidationError:
            return _error(
                400, f"Invalid event type {name!r}: dot-separated lowercase segments, e.g. order.created"
            )
        parsed = _parse(EventTypeRegistration, body)
        if isinstance(parsed, Reply):
            return parsed
        assert isinstance(parsed, EventTypeRegistration)
        try:
            return Reply(200, self._catalog().register(name, parsed.json_schema, parsed.description))
        except InvalidSchema as exc:
            return _invalid(f"schema: {exc}")

    def delete_event_type(self, name: str) -> Reply:
        if self._catalog().delete(name):
            return Reply(200, {"deleted": name})
        return _error(404, f"Event type {name!r} is not registered")

    # --- delivery log -----------------------------------------------------------------

    def partner_deliveries(self, partner_id: str, params: Mapping[str, str] | None) -> Reply:
        query = _query(params)
        if isinstance(query, Reply):
            return query
        if query.eventId:
            return Reply(
                200, {"deliveries": self.log.by_event(query.eventId, partner_id), "nextCursor": None}
            )
        try:
            page, cursor = self.log.by_partner(
                partner_id,
                status=query.status,
                since=query.since,
                until=query.until,
                cursor=query.cursor,
                limit=query.limit,
            )
        except BadCursor as exc:
            return _error(400, str(exc))
        return Reply(200, {"deliveries": page, "nextCursor": cursor})

    def event_deliveries(self, event_id: str) -> Reply:
        return Reply(200, {"eventId": event_id, "deliveries": self.log.by_event(event_id)})

    def own_deliveries(self, api_key: str | None, params: Mapping[str, str] | None) -> Reply:
        """The partner-scoped read API: a partner's key sees its own deliveries, nothing else."""
        if not api_key:
            return _error(401, "API key is required")
        partner = self.store.find_by_api_key(api_key)
        if partner is None:
            return _error(401, "Invalid API key or inactive partner")
        return self.partner_deliveries(partner.id, params)

    # --- replay -----------------------------------------------------------------------

    def replay(self, partner_id: str, body: str | None) -> Reply:
        parsed = _parse(ReplayRequest, body)
        if isinstance(parsed, Reply):
            return parsed
        assert isinstance(parsed, ReplayRequest)
        event = self.events.get(parsed.eventId)
        if event is None:
            days = self.settings.delivery_log_ttl_days
            return _error(404, f"Event {parsed.eventId} not found (events are kept {days:g} days)")
        return self._active(partner_id, lambda p: self._enqueue(p, [event], "replay"))

    def recover(self, partner_id: str, body: str | None) -> Reply:
        parsed = _parse(RecoverRequest, body)
        if isinstance(parsed, Reply):
            return parsed
        assert isinstance(parsed, RecoverRequest)
        since = parsed.since

        def recover(partner: Partner) -> Reply:
            # bounded, and one query for the events: a call stays well inside API
            # Gateway's 29 s; "remaining" says to call again
            failed = self.log.failed_since(partner.id, since)
            ids = failed[:RECOVER_PER_REQUEST]
            found = self.events.get_many(ids)
            reply = self._enqueue(partner, found, "recover")
            reply.body["missing"] = sorted(set(ids) - {e.eventId for e in found})
            reply.body["remaining"] = len(failed) - len(ids)
            return reply

        return self._active(partner_id, recover)

    def send_test(self, partner_id: str) -> Reply:
        def test(partner: Partner) -> Reply:
            event = Event(
                eventId=new_event_id(),
                eventType=TEST_EVENT_TYPE,
                timestamp=utc_timestamp(),
                data={"message": "This is a test webhook", "partnerId": partner.id},
            )
            self.events.save([event])
            return self._enqueue(partner, [event], "test")

        return self._active(partner_id, test)

    def _enqueue(self, partner: Partner, events: list[Event], reason: str) -> Reply:
        if self.delivery_queue is None:
            return _error(503, "Replay is not available here (no DELIVERY_QUEUE_URL)")
        sent, failed = _send(self.delivery_queue, partner, events, reason)
        logger.info(
            "deliveries enqueued by an operator",
            extra={"reason": reason, "partner_id": partner.id, "count": len(sent)},
        )
        status = 202 if not failed else (207 if sent else 503)
        return Reply(status, {"partnerId": partner.id, "enqueued": sent, "failed": failed})

    # --- helpers ------------------------------------------------------------------------

    def _found(self, action: Callable[[], Reply]) -> Reply:
        try:
            return action()
        except PartnerNotFound:
            return _error(404, "Partner not found")

    def _active(self, partner_id: str, action: Callable[[Partner], Reply]) -> Reply:
        def run() -> Reply:
            partner = self.store.get(partner_id)
            if not partner.is_active:
                return _error(409, "Partner is inactive: activate it first")
            return action(partner)

        return self._found(run)


def _send(queue: Queue, partner: Partner, events: list[Event], reason: str) -> tuple[list[str], list[str]]:
    """Delivery messages for ``events`` to the delivery queue: (event ids sent, ids refused)."""
    deliveries = [DeliveryMessage(partnerId=partner.id, event=e) for e in events]
    messages = [
        OutgoingMessage(str(n), d.as_body(), {**d.attributes(), "reason": reason})
        for n, d in enumerate(deliveries)
    ]
    failed = send_all(queue, messages).unsent
    sent = [e.eventId for n, e in enumerate(events) if str(n) not in failed]
    return sent, [e.eventId for n, e in enumerate(events) if str(n) in failed]
