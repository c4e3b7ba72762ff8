"""The core of the deliver function: sign, POST, and decide what happens next.

Outcomes of one attempt:
- 2xx: delivered; the message is deleted.
- 410 Gone, or the last attempt failed: dead-lettered (sent to the delivery DLQ with
  the reason as message attributes) and then deleted from the main queue.
- any other failure with attempts left: the message's visibility timeout becomes the
  backoff delay and the record is reported failed, so SQS hands it back then.
- the partner was deleted or deactivated since: dropped, with a log line.

Flow control comes before the POST and never costs an attempt:
- the partner's endpoint is disabled (endpoint health): the delivery is parked, to be
  sent when the endpoint is enabled again;
- the partner is paused (it answered 429, or 503 with Retry-After) or its rate limit
  gave the delivery a slot in a later second: the delivery is deferred, re-sent to the
  delivery queue with a DelaySeconds, its attempts so far and its slot. Extending the
  visibility timeout instead would raise SQS's receive count, which the redrive policy
  counts: a partner at its limit for long would see deliveries dead-lettered that were
  never attempted.

Attempt numbers are the attempts a deferred message carried plus SQS's receive count.

Time: a POST is only started when it can finish, with its settling, before the
invocation's deadline (partner timeouts go up to 30 s, and a batch of 10 at a concurrency
of 5 runs in two rounds). A delivery that cannot start in time is put back unattempted:
re-sent like a deferred delivery, with its attempts so far, and acknowledged. Reporting it
as a batch item failure instead would raise its receive count, which is its attempt
number: each invocation that runs short would cost some deliveries an attempt they never
made. Only when that re-send fails is the record reported failed (SQS brings it back).
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from .backoff import parse_retry_after, retry_delay_seconds
from .config import Settings
from .delivery_log import AttemptRecord, DeliveryLog
from .endpoint_health import Disabled, EndpointHealth, ParkedDeliveries
from .http_delivery import HttpResult, WebhookClient, post
from .models import DeliveryMessage, Event, EventEnvelope, new_event_id, to_json, utc_timestamp, webhook_body
from .observability import MetricUnit, logger, metrics, tracer
from .partners import Partner, PartnerNotFound, PartnerStore
from .queues import Queue
from .rate_limit import RateLimiter
from .signing import signature_headers

Outcome = Literal["delivered", "retry", "dead_lettered", "dropped", "deferred", "parked", "not_started"]
RETRY_AFTER_STATUSES = (429, 503)
ENDPOINT_DISABLED_EVENT = "endpoint.disabled"
# the rate limit's counters are in MongoDB: while it is away, limited deliveries wait
LIMITER_UNAVAILABLE_DEFER_SECONDS = 5
MAX_DEFER_SECONDS = 900  # SQS's DelaySeconds limit; a later slot is waited for in steps
SLOT_LEAD_SECONDS = 0.5  # a rate-limit slot starting sooner than this is waited for in-process
# after a POST: the DLQ send or visibility change, the delivery log and health writes
# (each time-boxed), and the return to Lambda
SETTLE_SECONDS = 3.0


@dataclass
class Batch:
    """One invocation's delivery log records and endpoint outcomes, written when it ends.

    Per invocation, not per deliverer: the local runtime runs several invocations of one
    function at once in a process, and one invocation's end must write only its own.
    """

    attempts: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, Any] = field(default_factory=dict)


class RetryLater(Exception):
    """Reported as a batch item failure: SQS redelivers the message after its new visibility."""


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    attempt: int
    status: int | None = None
    error: str | None = None
    delay_seconds: int | None = None


@dataclass(frozen=True)
class Ready:
    """A delivery admitted to its POST now."""

    message: DeliveryMessage
    partner: Partner
    number: int  # this attempt's number, 1-based across re-sends
    timeout: float
    context: dict[str, Any]


# --- the decisions, as plain functions (tests/unit/test_deliver_steps.py) -----------------


def admission(partner: Partner | None) -> Literal["drop", "park", "go"]:
    """No partner or an inactive one: drop. A disabled endpoint: park. Otherwise go on."""
    if partner is None or not partner.is_active:
        return "drop"
    return "park" if partner.endpoint_disabled else "go"


def fits_before(deadline: float | None, timeout: float, now: float) -> bool:
    """Whether a POST of ``timeout`` and the settling after it end before ``deadline``."""
    return deadline is None or now + timeout + SETTLE_SECONDS <= deadline


def decide(result: HttpResult, number: int, settings: Settings, rng: random.Random) -> Attempt:
    """Delivered (2xx); dead letter (410, or the last attempt); else retry after a backoff
    (exponential with jitter, lengthened by a 429/503's Retry-After up to its cap)."""
    if result.ok:
        return Attempt("delivered", number, result.status)
    if result.status == 410 or number >= settings.webhook_max_attempts:
        return Attempt("dead_lettered", number, result.status, result.error)
    retry_after = parse_retry_after(result.retry_after) if result.status in RETRY_AFTER_STATUSES else None
    delay = retry_delay_seconds(
        number,
        settings.webhook_retry_delay,
        retry_after=retry_after,
        retry_after_max=settings.retry_after_max_seconds,
        rng=rng,
    )
    return Attempt("retry", number, result.status, result.error, delay)


def asks_to_slow_down(result: HttpResult) -> bool:
    """A 429, or a 503 with Retry-After: every delivery to that partner pauses."""
    return result.status == 429 or (result.status in RETRY_AFTER_STATUSES and bool(result.retry_after))


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        store: PartnerStore,
        client: WebhookClient,
        delivery_queue: Queue,
        delivery_dlq: Queue,
        rng: random.Random | None = None,
        log: DeliveryLog | None = None,
        limiter: RateLimiter | None = None,
        health: EndpointHealth | None = None,
        parked: ParkedDeliveries | None = None,
        events_queue: Queue | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.delivery_queue = delivery_queue
        self.delivery_dlq = delivery_dlq
        self.rng = rng or random.Random()
        self.log = log
        self.limiter = limiter
        self.health = health
        self.parked = parked
        self.events_queue = events_queue  # where endpoint.disabled events go

    # --- one invocation -------------------------------------------------------------

    def begin_batch(self, bodies: Sequence[str]) -> Batch:
        """See partner changes made elsewhere; claim the rate-limit slots the batch needs
        (one round trip per limited partner). Returns the invocation's :class:`Batch`."""
        # deactivated, deleted or rotated partners: no delivery and no revoked secret from now on
        self.store.sync()
        if self.limiter is not None:
            self._claim_slots(bodies)
        return Batch()

    def _claim_slots(self, bodies: Sequence[str]) -> None:
        assert self.limiter is not None
        wanted: Counter[str] = Counter()
        limits: dict[str, int] = {}
        try:
            for body in bodies:
                try:
                    message = DeliveryMessage.model_validate_json(body)
                except ValidationError:
                    continue
                if message.rateSlot is not None:
                    continue  # holds its slot already
                partner_id = message.partnerId
                partner = self.store.get_cached(partner_id)
                if partner is None or not partner.rate_limit or not partner.is_active:
                    continue
                if not partner.endpoint_disabled and not partner.paused_for():
                    limits[partner_id] = partner.rate_limit
                    wanted[partner_id] += 1
            for partner_id, count in wanted.items():
                self.limiter.reserve(partner_id, limits[partner_id], count)
        except PyMongoError as exc:  # each delivery asks again on its own
            logger.warning("rate limit slots not claimed", extra={"error": type(exc).__name__})

    def finish_batch(self, batch: Batch) -> None:
        """Write the invocation's delivery log and endpoint health; announce endpoints
        disabled. Never raises."""
        if self.log is not None:
            self.log.flush(batch.attempts)
        if self.health is not None:
            for disabled in self.health.flush(batch.outcomes):
                self._announce(disabled)

    # --- one message ----------------------------------------------------------------

    def deliver(
        self,
        body: str,
        receive_count: int,
        receipt_handle: str,
        batch: Batch,
        deadline: float | None = None,
    ) -> Attempt:
        """One attempt for one message, recorded in ``batch``, in four steps: parse, admit
        (drop, park, hold or not start), post, settle. Raises :class:`RetryLater` when SQS
        should retry it.

        ``deadline`` is the invocation's end on the ``time.monotonic()`` clock (None: no limit).
        """
        message = self._parse(body, receive_count)
        if isinstance(message, Attempt):
            return message
        ready = self._admit(message, receive_count, deadline)
        if isinstance(ready, Attempt):
            return ready
        result = self._attempt(ready)
        return self._settle(body, ready, result, receipt_handle, batch)

    def _parse(self, body: str, receive_count: int) -> DeliveryMessage | Attempt:
        """The delivery message, or its dead letter: a malformed one never gets better."""
        try:
            return DeliveryMessage.model_validate_json(body)
        except ValidationError as exc:
            reason = f"malformed delivery message: {exc.errors()[0]['msg']}"
            self._dead_letter(body, {"attempts": receive_count, "lastError": reason})
            return Attempt("dead_lettered", receive_count, error=reason)

    def _admit(self, message: DeliveryMessage, receive_count: int, deadline: float | None) -> Ready | Attempt:
        """Whether the POST happens now; if not, what became of the delivery instead."""
        attempts_before = message.priorAttempts + receive_count - 1
        number = attempts_before + 1
        context = {"event_id": message.event.eventId, "partner_id": message.partnerId, "attempt": number}
        partner = self.store.get_cached(message.partnerId)
        gate = admission(partner)
        if gate == "park":
            assert partner is not None
            try:
                partner = self._park(message, partner)
            except PartnerNotFound:
                gate = "drop"  # deleted while parking
            else:
                if partner is None:
                    return Attempt("parked", attempts_before)
        if gate == "drop" or partner is None:
            logger.warning("delivery dropped: partner missing, inactive or deleted", extra=context)
            metrics.add_metric(name="DeliveriesDropped", unit=MetricUnit.Count, value=1)
            return Attempt("dropped", number)
        wait, slot = self._hold(partner, message)
        if wait:
            return self._defer(message, attempts_before, wait, slot)
        timeout = partner.timeout_ms / 1000 if partner.timeout_ms else self.settings.timeout_seconds
        if not fits_before(deadline, timeout, time.monotonic()):
            return self._not_started(message, attempts_before, slot)
        return Ready(message, partner, number, timeout, context)

    def _attempt(self, ready: Ready) -> HttpResult:
        try:
            return self._post(ready.message, ready.partner, ready.timeout)
        except Exception as exc:  # noqa: BLE001 - recorded and retried like any failed attempt
            # the type only: a message could quote a header value or the URL's credentials
            logger.error("delivery attempt raised", extra={**ready.context, "error": type(exc).__name__})
            return HttpResult(None, 0.0, f"internal error: {type(exc).__name__}", type(exc).__name__)

    def _settle(
        self, body: str, ready: Ready, result: HttpResult, receipt_handle: str, batch: Batch
    ) -> Attempt:
        """Record the attempt and act on its outcome: done, dead letter, or back off."""
        message, partner, number, context = ready.message, ready.partner, ready.number, ready.context
        event = message.event
        attempt = decide(result, number, self.settings, self.rng)
        if self.health is not None:
            self.health.record(
                partner,
                result.ok,
                result.error or (f"HTTP {result.status}" if result.status else None),
                into=batch.outcomes,
            )
        if asks_to_slow_down(result):
            self._pause(partner, result, attempt)
        logger.info(
            "delivery attempt",
            extra={
                **context,
                "event_type": event.eventType,
                "status": result.status,
                "latency_ms": round(result.latency_ms, 1),
                "outcome": attempt.outcome,
                "error": result.error,
                "retry_in_s": attempt.delay_seconds,
            },
        )
        metrics.add_metric(name="DeliveryLatency", unit=MetricUnit.Milliseconds, value=result.latency_ms)
        record = AttemptRecord(
            event.eventId,
            event.eventType,
            message.partnerId,
            number,
            attempt.outcome,
            result.status,
            result.latency_ms,
            result.error_class,
            result.error,
            result.body_excerpt,
            datetime.now(UTC),
        )

        if attempt.outcome == "delivered":
            metrics.add_metric(name="Delivered", unit=MetricUnit.Count, value=1)
            self._log(record, batch)
            return attempt
        metrics.add_metric(name="AttemptFailed", unit=MetricUnit.Count, value=1)
        if attempt.outcome == "dead_lettered":
            self._dead_letter(
                body,
                {
                    "partnerId": message.partnerId,
                    "eventId": event.eventId,
                    "eventType": event.eventType,
                    "attempts": number,
                    "lastStatus": result.status,
                    "lastError": (result.error or "")[:1000],
                },
            )
            logger.error(
                "delivery dead-lettered", extra={**context, "status": result.status, "error": result.error}
            )
            self._log(record, batch)
            return attempt
        assert attempt.delay_seconds is not None
        try:
            self.delivery_queue.change_visibility(receipt_handle, attempt.delay_seconds)
        except (BotoCoreError, ClientError) as exc:
            # The message still comes back, after the queue's own visibility timeout.
            logger.warning("backoff not applied", extra={**context, "error": type(exc).__name__})
        self._log(record, batch)
        raise RetryLater(f"attempt {number} failed: {result.error}")

    @tracer.capture_method(capture_response=False)
    def _post(self, message: DeliveryMessage, partner: Partner, timeout: float) -> HttpResult:
        event = message.event
        tracer.put_annotation("event_id", event.eventId)  # the correlation id across traces
        tracer.put_annotation("partner_id", message.partnerId)
        payload = webhook_body(event)
        # the partner's own headers first: the platform's (signatures, ids) always win
        headers = {
            **dict(partner.headers),
            **signature_headers(event.eventId, event.eventType, payload, partner.signing_secrets()),
        }
        return post(
            self.client, partner.webhook_url, payload, headers, timeout, self.settings.response_body_limit
        )

    def _not_started(self, message: DeliveryMessage, attempts_before: int, slot: int | None) -> Attempt:
        """Too little of the invocation left for this POST: back on the queue, unattempted."""
        self._put_back(message, attempts_before, slot, 0, "started and not put back")
        metrics.add_metric(name="DeliveriesNotStarted", unit=MetricUnit.Count, value=1)
        logger.info(
            "delivery not started: invocation ending",
            extra={"event_id": message.event.eventId, "partner_id": message.partnerId},
        )
        return Attempt("not_started", attempts_before)

    def _log(self, record: AttemptRecord, batch: Batch) -> None:
        if self.log is not None:
            self.log.record(record, batch.attempts)

    # --- flow control ---------------------------------------------------------------

    def _park(self, message: DeliveryMessage, partner: Partner) -> Partner | None:
        """Park the delivery of a disabled endpoint. Returns the partner when the endpoint
        turned out to be enabled again (the delivery then goes ahead), None when parked."""
        if self.parked is None:  # a deployment without parking keeps the delivery queued
            raise RetryLater("endpoint disabled and no store for parked deliveries")
        try:
            key = self.parked.park(message)
            # Read past the cache: an operator may have just enabled the endpoint and
            # replayed what was parked, in which case this delivery must not stay behind.
            try:
                fresh = self.store.get(partner.id)
            except PartnerNotFound:  # deleted meanwhile: nothing to park for
                self.parked.unpark(key)
                raise
            if fresh.endpoint_disabled or not self.parked.unpark(key):
                metrics.add_metric(name="DeliveriesParked", unit=MetricUnit.Count, value=1)
                logger.info(
                    "delivery parked: endpoint disabled",
                    extra={"event_id": message.event.eventId, "partner_id": partner.id},
                )
                return None
        except PyMongoError as exc:
            raise RetryLater(f"delivery not parked: {type(exc).__name__}") from exc
        self.store.forget(partner.id)
        return fresh

    def _hold(self, partner: Partner, message: DeliveryMessage) -> tuple[int, int | None]:
        """Seconds the delivery must wait (0: go now), and the rate-limit slot it keeps meanwhile."""
        paused = partner.paused_for()
        if paused > 0:
            # spread what comes back, so the end of a pause is not a burst; the slot is
            # given up (claimed anew after the pause)
            return min(MAX_DEFER_SECONDS, math.ceil(paused * (1 + 0.2 * self.rng.random()))), None
        if not partner.rate_limit or self.limiter is None:
            return 0, None
        slot = message.rateSlot
        if slot is None or slot < int(time.time()):
            # no slot yet, or its second went by (a deferred delivery back late): going now
            # would count against this second's slots
            try:
                slot = self.limiter.acquire(partner.id, partner.rate_limit)
            except PyMongoError as exc:
                logger.warning("rate limit unavailable", extra={"error": type(exc).__name__})
                return LIMITER_UNAVAILABLE_DEFER_SECONDS, None
        ahead = slot - time.time()
        if ahead <= SLOT_LEAD_SECONDS:
            # DelaySeconds counts whole seconds: a slot this close is waited for here, so
            # the delivery goes in its own second rather than up to a second late
            time.sleep(max(0.0, ahead))
            return 0, None
        # back between LEAD before the slot's second and LEAD before its end: early rather
        # than late, as a delivery back after its second must claim a new slot
        return min(MAX_DEFER_SECONDS, math.ceil(ahead - SLOT_LEAD_SECONDS)), slot

    def _defer(
        self, message: DeliveryMessage, attempts_before: int, seconds: int, slot: int | None
    ) -> Attempt:
        self._put_back(message, attempts_before, slot, seconds, "deferred")
        metrics.add_metric(name="DeliveriesDeferred", unit=MetricUnit.Count, value=1)
        return Attempt("deferred", attempts_before, delay_seconds=seconds)

    def _put_back(
        self, message: DeliveryMessage, attempts_before: int, slot: int | None, seconds: int, what: str
    ) -> None:
        """Re-send the delivery with the attempts it made so far (so the next receive does
        not count as one). Raises :class:`RetryLater` if the queue does not take it."""
        copy = message.model_copy(update={"priorAttempts": attempts_before, "rateSlot": slot})
        try:
            self.delivery_queue.send(copy.as_body(), copy.attributes(), delay_seconds=seconds)
        except (BotoCoreError, ClientError) as exc:
            raise RetryLater(f"delivery not {what}: {type(exc).__name__}") from exc

    def _pause(self, partner: Partner, result: HttpResult, attempt: Attempt) -> None:
        """The partner asked us to slow down: hold all its deliveries for a while."""
        seconds: float | None = attempt.delay_seconds  # the backoff, lengthened by Retry-After
        if seconds is None:  # the last attempt: nothing to retry, but the other deliveries wait
            retry_after = parse_retry_after(result.retry_after)
            cap = self.settings.retry_after_max_seconds
            seconds = (
                min(retry_after, cap) if retry_after is not None else self.settings.webhook_retry_delay / 1000
            )
        if seconds <= 0:
            return
        try:
            self.store.pause(partner.id, datetime.now(UTC) + timedelta(seconds=seconds))
        except PyMongoError as exc:
            logger.warning(
                "partner not paused", extra={"partner_id": partner.id, "error": type(exc).__name__}
            )
            return
        logger.info(
            "partner paused", extra={"partner_id": partner.id, "status": result.status, "seconds": seconds}
        )

    def _announce(self, disabled: Disabled) -> None:
        """The ``endpoint.disabled`` log line, metric, and event (to partners subscribed to it)."""
        data = {
            "partnerId": disabled.partner_id,
            "name": disabled.name,
            "consecutiveFailures": disabled.consecutive_failures,
            "failingSince": utc_timestamp(disabled.failing_since),
            "disabledAt": utc_timestamp(disabled.disabled_at),
            "reason": disabled.reason,
        }
        logger.error(ENDPOINT_DISABLED_EVENT, extra={"partner_id": disabled.partner_id, "endpoint": data})
        metrics.add_metric(name="EndpointDisabled", unit=MetricUnit.Count, value=1)
        if self.events_queue is None:
            return
        event = Event(
            eventId=new_event_id(), eventType=ENDPOINT_DISABLED_EVENT, timestamp=utc_timestamp(), data=data
        )
        envelope = EventEnvelope(source="webhooks", events=[event])
        try:
            self.events_queue.send(to_json(envelope.model_dump(exclude_none=True)))
        except (BotoCoreError, ClientError) as exc:
            logger.warning("endpoint.disabled event not sent", extra={"error": type(exc).__name__})

    # --- outcomes -------------------------------------------------------------------

    def _dead_letter(self, body: str, attributes: dict[str, object]) -> None:
        """Raises if the DLQ is unreachable, so the message stays on the main queue."""
        try:
            self.delivery_dlq.send(body, attributes)
        except (BotoCoreError, ClientError) as exc:
            raise RetryLater(f"delivery DLQ unavailable: {type(exc).__name__}") from exc
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
