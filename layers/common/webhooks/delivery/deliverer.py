"""The core of the deliver function: sign, POST, and decide what happens next.

(A long docstring: the delivery's whole story in one place.)

A delivery message is one event for one endpoint of a partner (``endpointId``; absent: the
partner's first endpoint, the partner document's own ``webhookUrl``). The endpoint decides
everything about the target: its URL, secret(s), headers, timeout, retry schedule, rate
limit, pause, health, disabling and parking. A failing, paused or disabled endpoint never
delays or duplicates another endpoint of the same partner: each has its own messages.

Outcomes of one attempt:
- 2xx: delivered; the message is deleted.
- 410 Gone, or the last attempt failed: dead-lettered (sent to the delivery DLQ with
  the reason as message attributes) and then deleted from the main queue.
- any other failure with attempts left: retried. A copy of the message carrying the
  attempts made so far and a ``notBefore`` (now + the backoff) is sent to the delivery
  queue with a DelaySeconds of min(backoff, 900 s), and the original is acknowledged.
- the partner or the endpoint was deleted, or the partner deactivated, since: dropped, with
  a log line.
- dead-lettered after its attempts (410 or the last one), or without a POST (a safety bound
  below, or an endpoint with no usable secret): the partner is told
  (``message.attempt.exhausted``, to its endpoints that subscribe; ``lastStatus`` null when
  no POST was made), unless the delivery was itself one of the platform's events
  (:mod:`.operational_events`).

Attempts are counted in the message, never from SQS's receive count: an attempt is spent
only when a POST was made. A receive that POSTs nothing (a throttled invocation, an init
failure, a timeout before the POST) costs the delivery no attempt. The one exception to
"exactly WEBHOOK_MAX_ATTEMPTS POSTs": a failed POST whose retry copy the delivery queue
refuses is not counted (the original comes back with the same ``priorAttempts`` and that
attempt is made again), so an SQS send outage right after failed POSTs can add POSTs. The
number of attempts is the endpoint's retry schedule's (its own ``retrySchedule``, else the
service default). Every message this
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

The endpoint store away (MongoDB not answering while the delivery is admitted or parked) is
a deliberate wait, not a failure: the delivery is deferred 10-15 s as a fresh copy
(:meth:`FlowControl._store_away`), whose receive count starts again at 1, so no outage
counts towards the unattempted-receives bound or the queue's redrive; only MAX_HOPS
(over a day of such deferrals) bounds it.

Flow control comes before the POST and never costs an attempt:
- the endpoint is disabled (endpoint health): the delivery is parked, to be sent when the
  endpoint is enabled again;
- the endpoint is paused (it answered 429, or 503 with Retry-After) or its rate limit
  gave the delivery a slot in a later second: the delivery is deferred, re-sent with a
  DelaySeconds, its attempts so far and its slot.

Whatever happens after a POST (reading the answer's headers, deciding, recording), the
attempt is logged, counted in the delivery log and decided: if :func:`decide` raises, a
plain backoff decides instead (:func:`fallback_decision`).

Time: a POST is only started when it can finish, with its settling, before the
invocation's deadline (endpoint timeouts go up to 30 s, and a batch of 10 at a concurrency
of 5 runs in two rounds). A delivery that cannot start in time is put back unattempted
and acknowledged.

A record is reported failed (SQS brings the original back) only when: the delivery queue
refuses a re-send (after a failed POST, the visibility is first set to the backoff where it
can be); the DLQ refuses a dead letter; a copy back before its ``notBefore`` waits on (its
visibility extended); an endpoint is disabled in a deployment without parked-delivery
storage; or something unforeseen raises.

Logs: a failed attempt gets the full line (every key Powertools adds: the function, its
request id, the trace); a delivered one a short line with the keys an operator queries
(event, partner, endpoint when not the first, attempt, status, latency), sampled by
SUCCESS_LOG_SAMPLE_RATE. The delivery log in MongoDB keeps every attempt, with its endpoint.
Operational events (an exhausted delivery, an endpoint failing or disabled) are collected
per invocation and sent at its end (:meth:`Deliverer.finish_batch`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from ..config import Settings
from ..endpoints.model import Endpoint, EndpointNotFound, first_endpoint_id
from ..endpoints.store import EndpointStore
from ..models import DeliveryMessage, webhook_body
from ..observability import MetricUnit, logger, metrics, tracer
from ..partners.model import PartnerNotFound
from ..partners.store import PartnerStore
from ..queues import Queue, loop_bound
from ..store.delivery_log import AttemptRecord, DeliveryLog
from .backoff import visibility_cap
from .batch import Batch, claim_slots
from .flow_control import FlowControl, deliberate_waits, log_context
from .health import EndpointHealth
from .http import HttpResult, WebhookClient, post
from .log_lines import log_delivered
from .operational_events import exhausted_event, health_event, publish
from .parked import ParkedDeliveries
from .policy import Attempt, RetryLater, admission, asks_to_slow_down, decide, fallback_decision
from .rate_limit import RateLimiter
from .receipt import Receipt
from .signing import signature_headers

# after a POST: the DLQ send or visibility change, the delivery log and health writes
# (each time-boxed), and the return to Lambda
SETTLE_SECONDS = 3.0
# receives of one message copy that made no POST, beyond its deliberate waits, before it is
# dead-lettered (below the delivery queue's redrive maxReceiveCount of 10)
MAX_UNATTEMPTED_RECEIVES = 5
UNSIGNABLE = (
    "endpoint has no usable signing secret (secretKey missing or not a string): "
    "rotate its secret or run webhooks migrate, then redrive"
)


@dataclass(frozen=True)
class Ready:
    """A delivery admitted to its POST now."""

    message: DeliveryMessage
    endpoint: Endpoint
    number: int  # this attempt's number, 1-based across re-sends
    timeout: float
    context: dict[str, Any]


def fits_before(deadline: float | None, timeout: float, now: float) -> bool:
    """Whether a POST of ``timeout`` and the settling after it end before ``deadline``."""
    return deadline is None or now + timeout + SETTLE_SECONDS <= deadline


def start_lag(message: DeliveryMessage, receipt: Receipt, now: float) -> float:
    """Seconds between when the delivery was due and ``now``. Due: when SQS took the message
    (every delayed send also sets ``notBefore``, at least its DelaySeconds ahead) or its
    ``notBefore``, whichever is later. Deliberate waits are never lag."""
    due = max(receipt.sent_at or now, message.notBefore or 0.0)
    return max(0.0, now - due)


def endpoint_id_of(message: DeliveryMessage) -> str:
    """The id of the endpoint a delivery is for (a message without one: the partner's first)."""
    return message.endpointId or first_endpoint_id(message.partnerId)


class Deliverer(FlowControl):
    def __init__(
        self,
        settings: Settings,
        endpoints: EndpointStore,
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
        self.endpoints = endpoints
        self.client = client
        self.delivery_queue = delivery_queue
        self.delivery_dlq = delivery_dlq
        self.rng = rng or random.Random()
        self.log = log
        self.limiter = limiter
        self.health = health
        self.parked = parked
        self.events_queue = events_queue  # where operational events go

    @property
    def store(self) -> PartnerStore:
        """The partners' store, whose cache holds the endpoints deliveries read."""
        return self.endpoints.partner_store

    # --- one invocation -------------------------------------------------------------

    def begin_batch(self, bodies: Sequence[str]) -> Batch:
        """See partner and endpoint changes made elsewhere; claim the rate-limit slots the
        batch needs (one round trip per limited endpoint). Returns the invocation's
        :class:`Batch`."""
        # deactivated, deleted or rotated: no delivery and no revoked secret from now on
        self.store.sync()
        if self.limiter is not None:
            claim_slots(self.endpoints, self.limiter, bodies)
        return Batch()

    def finish_batch(self, batch: Batch) -> None:
        """Write the invocation's delivery log and endpoint health; send its operational
        events (exhausted deliveries, endpoints failing or disabled) in one message. Never
        raises."""
        if self.log is not None:
            self.log.flush(batch.attempts)
        events = list(batch.events)
        batch.events.clear()
        if self.health is not None:
            events += [health_event(notice) for notice in self.health.flush(batch.outcomes)]
        publish(events, self.events_queue)

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
        stopped = self._bounded(message, receipt, now, batch)
        if stopped is not None:
            return stopped
        waiting = self._wait_if_early(message, receipt, now)
        if waiting is not None:
            return waiting
        ready = self._admit(message, deadline, batch)
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

    def _bounded(
        self, message: DeliveryMessage, receipt: Receipt, now: float, batch: Batch
    ) -> Attempt | None:
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
        metrics.add_metric(name="DeliveriesOverBound", unit=MetricUnit.Count, value=1)
        return self._dead_letter_unattempted(message, reason, batch)

    def _dead_letter_unattempted(self, message: DeliveryMessage, reason: str, batch: Batch) -> Attempt:
        """Dead-letter a delivery without a POST, with the attempts it had made so far; the
        partner is told like after a last POST (no status: none was answered)."""
        event = message.event
        self._dead_letter(
            self._fresh(message),
            {
                "partnerId": message.partnerId,
                "endpointId": endpoint_id_of(message),
                "eventId": event.eventId,
                "eventType": event.eventType,
                "attempts": message.priorAttempts,
                "lastError": reason,
            },
        )
        context = {**log_context(message), "attempt": message.priorAttempts}
        logger.error("delivery dead-lettered", extra={**context, "reason": reason, "hops": message.hops})
        exhausted = exhausted_event(message, endpoint_id_of(message), message.priorAttempts, None)
        if exhausted is not None:
            batch.events.append(exhausted)
        return Attempt("dead_lettered", message.priorAttempts, error=reason)

    def _admit(self, message: DeliveryMessage, deadline: float | None, batch: Batch) -> Ready | Attempt:
        """Whether the POST happens now; if not, what became of the delivery instead."""
        attempts_before = message.priorAttempts
        number = attempts_before + 1
        context = {**log_context(message), "attempt": number}
        try:
            endpoint = self.endpoints.get_cached(message.partnerId, message.endpointId)
            gate = admission(endpoint)
            if gate == "park":
                assert endpoint is not None
                try:
                    endpoint = self._park(message, endpoint)
                except (PartnerNotFound, EndpointNotFound):
                    gate = "drop"  # deleted while parking
                else:
                    if endpoint is None:
                        return Attempt("parked", attempts_before)
        except PyMongoError as exc:  # MongoDB away: a deliberate short wait, never a dead letter
            return self._store_away(message, attempts_before, exc)
        if gate == "drop" or endpoint is None:
            logger.warning(
                "delivery dropped: partner or endpoint missing, inactive or deleted", extra=context
            )
            metrics.add_metric(name="DeliveriesDropped", unit=MetricUnit.Count, value=1)
            return Attempt("dropped", number)
        if not endpoint.secret_key:
            # a legacy document whose secretKey is missing or not a string: signing with an
            # empty key would hand anyone a valid signature, so nothing is sent until an
            # operator gives the endpoint a secret (the dead letter can then be redriven)
            return self._dead_letter_unattempted(message, UNSIGNABLE, batch)
        wait, slot = self._hold(endpoint, message)
        if wait:
            return self._defer(message, attempts_before, wait, slot)
        timeout = endpoint.timeout_ms / 1000 if endpoint.timeout_ms else self.settings.timeout_seconds
        if not fits_before(deadline, timeout, time.monotonic()):
            return self._not_started(message, attempts_before, slot)
        return Ready(message, endpoint, number, timeout, context)

    def _attempt(self, ready: Ready) -> HttpResult:
        try:
            return self._post(ready.message, ready.endpoint, ready.timeout)
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
        return self._act(ready, result, attempt, receipt, batch)

    def _decide(self, ready: Ready, result: HttpResult) -> Attempt:
        try:
            return decide(
                result, ready.number, self.settings, self.rng, schedule=ready.endpoint.retry_schedule
            )
        except Exception as exc:  # noqa: BLE001 - e.g. a receiver's header nothing expected
            logger.error("delivery decision failed", extra={**ready.context, "error": type(exc).__name__})
            return fallback_decision(result, ready.number, self.settings, ready.endpoint.retry_schedule)

    def _record_health(self, ready: Ready, result: HttpResult, attempt: Attempt, batch: Batch) -> None:
        if self.health is not None:
            self.health.record(
                ready.endpoint,
                result.ok,
                result.error or (f"HTTP {result.status}" if result.status else None),
                into=batch.outcomes,
            )

    def _pause_if_asked(self, ready: Ready, result: HttpResult, attempt: Attempt, batch: Batch) -> None:
        if asks_to_slow_down(result):
            self._pause(ready.endpoint, result, attempt)

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
                ready.endpoint.id,
            )
            self.log.record(record, batch.attempts)

    def _act(
        self, ready: Ready, result: HttpResult, attempt: Attempt, receipt: Receipt, batch: Batch
    ) -> Attempt:
        """Done, dead letter (the partner told), or the retry's copy sent (the original is
        then acknowledged)."""
        message, event = ready.message, ready.message.event
        if attempt.outcome == "delivered":
            return attempt
        if attempt.outcome == "dead_lettered":
            self._dead_letter(
                self._fresh(message),
                {
                    "partnerId": message.partnerId,
                    "endpointId": ready.endpoint.id,
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
            exhausted = exhausted_event(message, ready.endpoint.id, ready.number, result.status)
            if exhausted is not None:
                batch.events.append(exhausted)
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
    def _post(self, message: DeliveryMessage, endpoint: Endpoint, timeout: float) -> HttpResult:
        event = message.event
        tracer.put_annotation("event_id", event.eventId)  # the correlation id across traces
        tracer.put_annotation("partner_id", message.partnerId)
        tracer.put_annotation("endpoint_id", endpoint.id)
        payload = webhook_body(event)
        # the endpoint's own headers first: the platform's (signatures, ids) always win
        headers = {
            **dict(endpoint.headers),
            **signature_headers(event.eventId, event.eventType, payload, endpoint.signing_secrets()),
        }
        return post(
            self.client, endpoint.webhook_url, payload, headers, timeout, self.settings.response_body_limit
        )

    # --- outcomes -------------------------------------------------------------------

    @staticmethod
    def _fresh(message: DeliveryMessage) -> str:
        """A dead letter's body: the delivery without what its trip carried (attempts, waits,
        hops, age), so a redrive starts it over with a full set of attempts."""
        return DeliveryMessage(
            partnerId=message.partnerId, endpointId=message.endpointId, event=message.event
        ).as_body()

    def _dead_letter(self, body: str, attributes: dict[str, object]) -> None:
        """Raises if the DLQ is unreachable, so the message stays on the main queue."""
        try:
            self.delivery_dlq.send(body, attributes)
        except (BotoCoreError, ClientError) as exc:
            raise RetryLater(f"delivery DLQ unavailable: {type(exc).__name__}") from exc
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
