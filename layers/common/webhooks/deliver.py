"""The core of the deliver function: sign, POST, and decide what happens next.

Outcomes of one attempt:
- 2xx: delivered; the message is deleted.
- 410 Gone, or the last attempt failed: dead-lettered (sent to the delivery DLQ with
  the reason as message attributes) and then deleted from the main queue.
- any other failure with attempts left: retried. A copy of the message carrying the
  attempts made so far and a ``notBefore`` (now + the backoff) is sent to the delivery
  queue with a DelaySeconds of min(backoff, 900 s), and the original is acknowledged.
- the partner was deleted or deactivated since: dropped, with a log line.

Attempts are counted in the message, never from SQS's receive count: an attempt is spent
only when a POST was made. A receive that POSTs nothing (a throttled invocation, an init
failure, a timeout before the POST) costs the delivery no attempt. Every message this
function sends back to its own queue (retries, deferrals, rate-limit slots, put-backs)
is the same re-send (:meth:`Deliverer._put_back`): a copy with ``priorAttempts``, a
``notBefore`` when it must wait, one more hop, and the acceptance time carried along.
A wait longer than SQS's 900 s DelaySeconds is finished by the copy itself: received
before its ``notBefore``, it extends its own visibility timeout to the rest of the wait
(capped at 12 h from the receive, less the time spent since: SQS refuses more) and ends
the receive without a POST.

Safety bounds, each a dead letter with the reason in ``lastError``, a log line and the
``DeliveriesOverBound`` metric:
- a message copy received more than MAX_UNATTEMPTED_RECEIVES (5) times beyond the
  deliberate waits it needed (:func:`deliberate_waits`, normally 0 or 1) without an
  attempt completing: something fails before every POST (the queue's redrive policy,
  at 10 receives, would move it without a reason);
- over webhooks.queues.MAX_HOPS re-sends or MAX_AGE_SECONDS since it was accepted: a
  loop of ours (Lambda's recursive-loop detection is off for this function).

Flow control comes before the POST and never costs an attempt:
- the partner's endpoint is disabled (endpoint health): the delivery is parked, to be
  sent when the endpoint is enabled again;
- the partner is paused (it answered 429, or 503 with Retry-After) or its rate limit
  gave the delivery a slot in a later second: the delivery is deferred, re-sent with a
  DelaySeconds, its attempts so far and its slot.

Whatever happens after a POST (reading the answer's headers, deciding, recording), the
attempt is logged, counted in the delivery log and decided: if :func:`decide` raises, a
plain backoff decides instead (:func:`fallback_decision`).

Time: a POST is only started when it can finish, with its settling, before the
invocation's deadline (partner timeouts go up to 30 s, and a batch of 10 at a concurrency
of 5 runs in two rounds). A delivery that cannot start in time is put back unattempted
and acknowledged. Only when a re-send fails is the record reported failed (SQS brings the
original back, after the backoff where the visibility could be set).

Logs: a failed attempt gets the full line (every key Powertools adds: the function, its
request id, the trace); a delivered one a short line with the keys an operator queries
(event, partner, attempt, status, latency), sampled by SUCCESS_LOG_SAMPLE_RATE. The
delivery log in MongoDB keeps every attempt.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from .backoff import parse_retry_after, retry_delay_seconds, visibility_cap
from .config import SQS_MAX_VISIBILITY_SECONDS, Settings
from .delivery_log import AttemptRecord, DeliveryLog
from .endpoint_health import Disabled, EndpointHealth, ParkedDeliveries
from .http_delivery import HttpResult, WebhookClient, post
from .models import DeliveryMessage, Event, EventEnvelope, new_event_id, to_json, utc_timestamp, webhook_body
from .observability import MetricUnit, logger, metrics, tracer
from .partners import Partner, PartnerNotFound, PartnerStore
from .queues import Queue, loop_bound
from .rate_limit import RateLimiter
from .signing import signature_headers

Outcome = Literal[
    "delivered", "retry", "dead_lettered", "dropped", "deferred", "parked", "not_started", "waiting"
]
RETRY_AFTER_STATUSES = (429, 503)
ENDPOINT_DISABLED_EVENT = "endpoint.disabled"
# the rate limit's counters are in MongoDB: while it is away, limited deliveries wait
LIMITER_UNAVAILABLE_DEFER_SECONDS = 5
MAX_DEFER_SECONDS = 900  # SQS's DelaySeconds limit; a later slot is waited for in steps
SLOT_LEAD_SECONDS = 0.5  # a rate-limit slot starting sooner than this is waited for in-process
# after a POST: the DLQ send or visibility change, the delivery log and health writes
# (each time-boxed), and the return to Lambda
SETTLE_SECONDS = 3.0
# receives of one message copy that made no POST, beyond its deliberate waits, before it is
# dead-lettered (below the delivery queue's redrive maxReceiveCount of 10)
MAX_UNATTEMPTED_RECEIVES = 5
# a copy back this close to its notBefore goes now: DelaySeconds are whole seconds, and the
# clocks of SQS and Lambda differ by a little
EARLY_TOLERANCE_SECONDS = 1.0
# what one visibility extension covers at least (12 h, less a margin for the time between
# the receive and the extension): how many deliberate waits a long notBefore needs
VISIBILITY_STEP_SECONDS = SQS_MAX_VISIBILITY_SECONDS - 3_600
# Lambda's longest batching window: a record can have been received this long before the
# invocation that handles it started
MAX_BATCHING_WINDOW_SECONDS = 300


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
class Receipt:
    """One receive of a message, as Lambda's record describes it."""

    handle: str
    count: int = 1  # ApproximateReceiveCount
    sent_at: float | None = None  # SentTimestamp, epoch seconds
    # the earliest this receive can have happened (epoch seconds): SQS caps a message's
    # visibility at 12 h from its receive
    received_at: float | None = None

    @classmethod
    def of(cls, handle: str, attributes: Mapping[str, str], invoked_at: float) -> Receipt:
        """From a record's ``attributes``. The first receive's time is SQS's own
        (ApproximateFirstReceiveTimestamp); a later one's is not given, so it is taken as
        early as it can be: the invocation's start less Lambda's longest batching window."""
        count = int(attributes.get("ApproximateReceiveCount") or 1)
        sent = attributes.get("SentTimestamp")
        first = attributes.get("ApproximateFirstReceiveTimestamp")
        received_at = invoked_at - MAX_BATCHING_WINDOW_SECONDS
        if count == 1 and first:
            received_at = min(int(first) / 1000, invoked_at)
        return cls(handle, count, int(sent) / 1000 if sent else None, received_at)


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


# --- the short line of a delivered attempt --------------------------------------------


class _ShortLine(logging.Formatter):
    """A delivered attempt's own keys only, rendered by the formatter the deliver logger uses
    at the time (Powertools' JSON lines, or `webhooks local`'s human ones, which also name the
    function). Left out: the keys Powertools adds to every line of an invocation (level,
    location, timestamp, service, function name, ARN, memory, request id, cold start, trace
    id), over half the bytes of the line and the same on every line of the log group; a
    delivered attempt is INFO, and CloudWatch stamps each line's time itself."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = record.__dict__["fields"]  # set by log_delivered
        formatter = logger.registered_formatter
        if type(formatter) is not LambdaPowertoolsFormatter:  # a human line: which function
            fields = {"level": "INFO", "service": logger.service, **fields}
        if not isinstance(formatter, LambdaPowertoolsFormatter):
            return to_json(fields)
        # typed for a LogRecord, serialize() takes the dict Powertools' format() builds
        return formatter.serialize(fields)  # type: ignore[arg-type]


class _LoggersStream(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes wherever the deliver logger's own handler writes at the time."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return getattr(logger.registered_handler, "stream", None) or sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass  # StreamHandler's constructor sets one: the logger's is used instead


_delivered_lines = logging.getLogger("webhooks.delivered")
_delivered_lines.propagate = False  # like Powertools' logger: no second copy via the root logger
_delivered_handler = _LoggersStream()
_delivered_handler.setFormatter(_ShortLine())
_delivered_lines.addHandler(_delivered_handler)
_delivered_lines.setLevel(logging.INFO)  # gated by the deliver logger's level instead


def log_delivered(fields: dict[str, Any]) -> None:
    """The short ``delivery attempt`` line of a delivered attempt (see :class:`_ShortLine`),
    at the deliver logger's level."""
    if logger.log_level > logging.INFO:
        return
    _delivered_lines.info("delivery attempt", extra={"fields": {"message": "delivery attempt", **fields}})


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


def fallback_decision(result: HttpResult, number: int, settings: Settings) -> Attempt:
    """What :func:`decide` would say without reading the receiver's answer beyond its status
    (no Retry-After): used when deciding raised, so the attempt still ends
    delivered, retried or dead-lettered."""
    if result.ok:
        return Attempt("delivered", number, result.status)
    if result.status == 410 or number >= settings.webhook_max_attempts:
        return Attempt("dead_lettered", number, result.status, result.error)
    return Attempt(
        "retry",
        number,
        result.status,
        result.error,
        retry_delay_seconds(number, settings.webhook_retry_delay),
    )


def deliberate_waits(message: DeliveryMessage, sent_at: float | None) -> int:
    """Receives of this copy that end without a POST by design: its DelaySeconds covers at
    most 900 s of the wait to its ``notBefore``; each receive before then extends its
    visibility by up to :data:`VISIBILITY_STEP_SECONDS`."""
    if message.notBefore is None or sent_at is None:
        return 0
    beyond_delay = message.notBefore - sent_at - MAX_DEFER_SECONDS
    return max(0, math.ceil(beyond_delay / VISIBILITY_STEP_SECONDS))


def start_lag(message: DeliveryMessage, receipt: Receipt, now: float) -> float:
    """Seconds between when the delivery was due and ``now``. Due: when SQS took the message
    (every delayed send also sets ``notBefore``, at least its DelaySeconds ahead) or its
    ``notBefore``, whichever is later. Deliberate waits are never lag."""
    due = max(receipt.sent_at or now, message.notBefore or 0.0)
    return max(0.0, now - due)


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
        now = time.time()
        try:
            for body in bodies:
                try:
                    message = DeliveryMessage.model_validate_json(body)
                except ValidationError:
                    continue
                if message.rateSlot is not None:
                    continue  # holds its slot already
                if message.notBefore is not None and message.notBefore - now > EARLY_TOLERANCE_SECONDS:
                    continue  # back early: it waits on without a POST
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

    def deliver(self, body: str, receipt: Receipt, batch: Batch, deadline: float | None = None) -> Attempt:
        """One attempt for one message, recorded in ``batch``, in five steps: parse, bound
        (hops, age, receives), wait (a copy back before its ``notBefore``), admit (drop,
        park, hold or not start), post and settle. Raises :class:`RetryLater` when SQS
        should hand the original back.

        ``deadline`` is the invocation's end on the ``time.monotonic()`` clock (None: no limit).
        """
        now = time.time()
        message = self._parse(body)
        if isinstance(message, Attempt):
            return message
        if message.acceptedAt is None:  # its first message: accepted when SQS took it
            message = message.model_copy(update={"acceptedAt": receipt.sent_at or now})
        if receipt.count == 1:
            lag = start_lag(message, receipt, now)
            metrics.add_metric(name="DeliveryStartLag", unit=MetricUnit.Seconds, value=round(lag, 1))
        stopped = self._bounded(message, receipt, now)
        if stopped is not None:
            return stopped
        self._wait_if_early(message, receipt, now)
        ready = self._admit(message, deadline)
        if isinstance(ready, Attempt):
            return ready
        result = self._attempt(ready)
        return self._settle(ready, result, receipt, batch)

    def _parse(self, body: str) -> DeliveryMessage | Attempt:
        """The delivery message, or its dead letter: a malformed one never gets better."""
        try:
            return DeliveryMessage.model_validate_json(body)
        except ValidationError as exc:
            reason = f"malformed delivery message: {exc.errors()[0]['msg']}"
            self._dead_letter(body, {"attempts": 0, "lastError": reason})
            return Attempt("dead_lettered", 0, error=reason)

    def _bounded(self, message: DeliveryMessage, receipt: Receipt, now: float) -> Attempt | None:
        """The dead letter of a delivery past a safety bound (see the module's docstring)."""
        assert message.acceptedAt is not None
        reason = loop_bound(message.hops, message.acceptedAt, now)
        if reason is None:
            allowed = MAX_UNATTEMPTED_RECEIVES + deliberate_waits(message, receipt.sent_at)
            if receipt.count <= allowed:
                return None
            reason = (
                f"received {receipt.count} times without an attempt completing, over the bound of {allowed}"
            )
        event = message.event
        self._dead_letter(
            self._fresh(message),
            {
                "partnerId": message.partnerId,
                "eventId": event.eventId,
                "eventType": event.eventType,
                "attempts": message.priorAttempts,
                "lastError": reason,
            },
        )
        context = {
            "event_id": event.eventId,
            "partner_id": message.partnerId,
            "attempt": message.priorAttempts,
        }
        logger.error("delivery dead-lettered", extra={**context, "reason": reason, "hops": message.hops})
        metrics.add_metric(name="DeliveriesOverBound", unit=MetricUnit.Count, value=1)
        return Attempt("dead_lettered", message.priorAttempts, error=reason)

    def _wait_if_early(self, message: DeliveryMessage, receipt: Receipt, now: float) -> None:
        """A copy received before its ``notBefore`` (a wait longer than a DelaySeconds can
        hold) hides itself for the rest of the wait, without a POST. Raises
        :class:`RetryLater` then; returns when the delivery is due."""
        if message.notBefore is None or message.notBefore - now <= EARLY_TOLERANCE_SECONDS:
            return
        context = {"event_id": message.event.eventId, "partner_id": message.partnerId}
        seconds = min(math.ceil(message.notBefore - now), visibility_cap(receipt.received_at or now, now))
        try:
            if seconds >= 1:
                self.delivery_queue.change_visibility(receipt.handle, seconds)
        except (BotoCoreError, ClientError) as exc:
            # back after the queue's own visibility timeout, to wait again
            logger.warning("wait not extended", extra={**context, "error": type(exc).__name__})
        logger.info("delivery waiting", extra={**context, "seconds": seconds})
        raise RetryLater(f"not due for {seconds} s")

    def _admit(self, message: DeliveryMessage, deadline: float | None) -> Ready | Attempt:
        """Whether the POST happens now; if not, what became of the delivery instead."""
        attempts_before = message.priorAttempts
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

    def _settle(self, ready: Ready, result: HttpResult, receipt: Receipt, batch: Batch) -> Attempt:
        """Everything after the POST: decide, record, act. Nothing raised while deciding or
        recording leaves the attempt unlogged, uncounted or undecided; only a queue that
        refuses the dead letter or the retry's copy raises :class:`RetryLater`."""
        attempt = self._decide(ready, result)
        for step in (self._record_health, self._pause_if_asked, self._report):
            try:
                step(ready, result, attempt, batch)
            except Exception as exc:  # noqa: BLE001 - the attempt goes on to its outcome
                logger.error(
                    "delivery bookkeeping failed",
                    extra={**ready.context, "step": step.__name__, "error": type(exc).__name__},
                )
        return self._act(ready, result, attempt, receipt)

    def _decide(self, ready: Ready, result: HttpResult) -> Attempt:
        try:
            return decide(result, ready.number, self.settings, self.rng)
        except Exception as exc:  # noqa: BLE001 - e.g. a receiver's header nothing expected
            logger.error("delivery decision failed", extra={**ready.context, "error": type(exc).__name__})
            return fallback_decision(result, ready.number, self.settings)

    def _record_health(self, ready: Ready, result: HttpResult, attempt: Attempt, batch: Batch) -> None:
        if self.health is not None:
            self.health.record(
                ready.partner,
                result.ok,
                result.error or (f"HTTP {result.status}" if result.status else None),
                into=batch.outcomes,
            )

    def _pause_if_asked(self, ready: Ready, result: HttpResult, attempt: Attempt, batch: Batch) -> None:
        if asks_to_slow_down(result):
            self._pause(ready.partner, result, attempt)

    def _report(self, ready: Ready, result: HttpResult, attempt: Attempt, batch: Batch) -> None:
        """The log line, the metrics and the delivery log record of the attempt."""
        message, event = ready.message, ready.message.event
        latency_ms = round(result.latency_ms, 1)
        if attempt.outcome == "delivered":
            rate = self.settings.success_log_sample_rate
            if rate >= 1 or self.rng.random() < rate:
                log_delivered(
                    {
                        **ready.context,
                        "status": result.status,
                        "latency_ms": latency_ms,
                        "outcome": attempt.outcome,
                    }
                )
            metrics.add_metric(name="Delivered", unit=MetricUnit.Count, value=1)
        else:
            logger.info(
                "delivery attempt",
                extra={
                    **ready.context,
                    "event_type": event.eventType,
                    "status": result.status,
                    "latency_ms": latency_ms,
                    "outcome": attempt.outcome,
                    "error": result.error,
                    "retry_in_s": attempt.delay_seconds,
                },
            )
            metrics.add_metric(name="AttemptFailed", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="DeliveryLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        if self.log is not None:
            record = AttemptRecord(
                event.eventId,
                event.eventType,
                message.partnerId,
                ready.number,
                attempt.outcome,
                result.status,
                result.latency_ms,
                result.error_class,
                result.error,
                result.body_excerpt,
                datetime.now(UTC),
            )
            self.log.record(record, batch.attempts)

    def _act(self, ready: Ready, result: HttpResult, attempt: Attempt, receipt: Receipt) -> Attempt:
        """Done, dead letter, or the retry's copy sent (the original is then acknowledged)."""
        message, event = ready.message, ready.message.event
        if attempt.outcome == "delivered":
            return attempt
        if attempt.outcome == "dead_lettered":
            self._dead_letter(
                self._fresh(message),
                {
                    "partnerId": message.partnerId,
                    "eventId": event.eventId,
                    "eventType": event.eventType,
                    "attempts": ready.number,
                    "lastStatus": result.status,
                    "lastError": (result.error or "")[:1000],
                },
            )
            logger.error(
                "delivery dead-lettered",
                extra={**ready.context, "status": result.status, "error": result.error},
            )
            return attempt
        assert attempt.delay_seconds is not None
        try:
            self._put_back(message, ready.number, None, attempt.delay_seconds, "retried")
        except RetryLater:
            # The original comes back instead, after the backoff if the visibility can be
            # set, else the queue's visibility timeout; its attempt is then made again.
            seconds = min(
                attempt.delay_seconds, visibility_cap(receipt.received_at or time.time(), time.time())
            )
            try:
                self.delivery_queue.change_visibility(receipt.handle, seconds)
            except (BotoCoreError, ClientError) as exc:
                logger.warning("backoff not applied", extra={**ready.context, "error": type(exc).__name__})
            raise
        return attempt

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
        self, message: DeliveryMessage, attempts: int, slot: int | None, seconds: int, what: str
    ) -> None:
        """Re-send the delivery, due in ``seconds``, with the ``attempts`` it made so far
        (SQS's receive count of the copy is not an attempt count): every retry, deferral and
        put-back. A wait past SQS's 900 s DelaySeconds is finished by the copy itself
        (:meth:`_wait_if_early`). Raises :class:`RetryLater` if the queue does not take it."""
        copy = message.model_copy(
            update={
                "priorAttempts": attempts,
                "rateSlot": slot,
                "notBefore": round(time.time() + seconds, 3) if seconds else None,
                "hops": message.hops + 1,
            }
        )
        try:
            self.delivery_queue.send(
                copy.as_body(), copy.attributes(), delay_seconds=min(seconds, MAX_DEFER_SECONDS)
            )
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

    @staticmethod
    def _fresh(message: DeliveryMessage) -> str:
        """A dead letter's body: the delivery without what its trip carried (attempts, waits,
        hops, age), so a redrive starts it over with a full set of attempts."""
        return DeliveryMessage(partnerId=message.partnerId, event=message.event).as_body()

    def _dead_letter(self, body: str, attributes: dict[str, object]) -> None:
        """Raises if the DLQ is unreachable, so the message stays on the main queue."""
        try:
            self.delivery_dlq.send(body, attributes)
        except (BotoCoreError, ClientError) as exc:
            raise RetryLater(f"delivery DLQ unavailable: {type(exc).__name__}") from exc
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
