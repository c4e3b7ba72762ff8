"""Flow control of a delivery, before its POST and never costing an attempt: hold it (its
endpoint is paused, or the endpoint's rate limit gave it a slot in a later second), park it
(its endpoint is disabled), defer or put it back on the queue (:meth:`FlowControl._put_back`,
the one re-send), pause an endpoint that asked to slow down, and the chained waits of a copy
back before its ``notBefore`` (a wait longer than SQS's 900 s DelaySeconds). Everything here
is per endpoint: one endpoint's pause, limit or parking never holds another endpoint of the
same partner."""

from __future__ import annotations

import math
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pymongo.errors import PyMongoError

from ..config import SQS_MAX_VISIBILITY_SECONDS, Settings
from ..endpoints.model import Endpoint, EndpointNotFound
from ..endpoints.store import EndpointStore
from ..models import DeliveryMessage
from ..observability import MetricUnit, logger, metrics
from ..partners.model import PartnerNotFound
from ..queues import Queue
from .backoff import parse_retry_after, visibility_cap
from .http import HttpResult
from .parked import ParkedDeliveries
from .policy import Attempt, RetryLater
from .rate_limit import RateLimiter, limiter_key
from .receipt import Receipt

# the rate limit's counters are in MongoDB: while it is away, limited deliveries wait
LIMITER_UNAVAILABLE_DEFER_SECONDS = 5
# the endpoint store is away (MongoDB down): the delivery is deferred this long, plus up to
# half again of jitter so a backlog does not come back all at once (see _store_away)
STORE_UNAVAILABLE_DEFER_SECONDS = 10
MAX_DEFER_SECONDS = 900  # SQS's DelaySeconds limit; a later slot is waited for in steps
SLOT_LEAD_SECONDS = 0.5  # a rate-limit slot starting sooner than this is waited for in-process
# a copy back this close to its notBefore goes now: DelaySeconds are whole seconds, and the
# clocks of SQS and Lambda differ by a little
EARLY_TOLERANCE_SECONDS = 1.0
# what one visibility extension covers at least (12 h, less a margin for the time between
# the receive and the extension): how many deliberate waits a long notBefore needs
VISIBILITY_STEP_SECONDS = SQS_MAX_VISIBILITY_SECONDS - 3_600
# early receives one copy spends waiting before a fresh copy takes the rest of the wait: one
# copy then lives about a day (two 12 h extensions), far inside the delivery queue's 4-day
# retention and under its redrive at 10 receives, however long the wait (7 days at most)
WAIT_RECEIVES_PER_COPY = 3


def log_context(message: DeliveryMessage) -> dict[str, Any]:
    """The keys every line about a delivery carries."""
    context: dict[str, Any] = {"event_id": message.event.eventId, "partner_id": message.partnerId}
    if message.endpointId is not None:  # a first endpoint's lines read as they did before
        context["endpoint_id"] = message.endpointId
    return context


def deliberate_waits(message: DeliveryMessage, sent_at: float | None) -> int:
    """Receives of this copy that end without a POST by design: its DelaySeconds covers at
    most 900 s of the wait to its ``notBefore``; each receive before then extends its
    visibility by up to :data:`VISIBILITY_STEP_SECONDS`, and the one after
    WAIT_RECEIVES_PER_COPY - 1 such extensions hands the wait to a fresh copy."""
    if message.notBefore is None or sent_at is None:
        return 0
    beyond_delay = message.notBefore - sent_at - MAX_DEFER_SECONDS
    return min(WAIT_RECEIVES_PER_COPY, max(0, math.ceil(beyond_delay / VISIBILITY_STEP_SECONDS)))


class FlowControl:
    """What happens before a POST, never costing an attempt (a mixin of
    :class:`~webhooks.delivery.deliverer.Deliverer`, which sets these attributes)."""

    settings: Settings
    endpoints: EndpointStore
    delivery_queue: Queue
    rng: random.Random
    limiter: RateLimiter | None
    parked: ParkedDeliveries | None

    def _wait_if_early(self, message: DeliveryMessage, receipt: Receipt, now: float) -> Attempt | None:
        """A copy received before its ``notBefore`` (a wait longer than a DelaySeconds can
        hold) hides itself for the rest of the wait, without a POST, and raises
        :class:`RetryLater`; on its WAIT_RECEIVES_PER_COPY-th receive it hands the rest of
        the wait to a fresh copy instead (returned: "waiting", the original acknowledged).
        Returns None when the delivery is due."""
        if message.notBefore is None or message.notBefore - now <= EARLY_TOLERANCE_SECONDS:
            return None
        context = log_context(message)
        if receipt.count >= WAIT_RECEIVES_PER_COPY:
            # same attempts, slot and notBefore (to the second); its receive count starts at 1
            remaining = math.ceil(message.notBefore - now)
            self._put_back(message, message.priorAttempts, message.rateSlot, remaining, "handed on")
            logger.info("delivery waiting: handed to a fresh copy", extra={**context, "seconds": remaining})
            return Attempt("waiting", message.priorAttempts, delay_seconds=remaining)
        seconds = min(math.ceil(message.notBefore - now), visibility_cap(receipt.received_at or now, now))
        try:
            if seconds >= 1:
                self.delivery_queue.change_visibility(receipt.handle, seconds)
        except (BotoCoreError, ClientError) as exc:
            # back after the queue's own visibility timeout, to wait again
            logger.warning("wait not extended", extra={**context, "error": type(exc).__name__})
        logger.info("delivery waiting", extra={**context, "seconds": seconds})
        raise RetryLater(f"not due for {seconds} s")

    def _not_started(self, message: DeliveryMessage, attempts_before: int, slot: int | None) -> Attempt:
        """Too little of the invocation left for this POST: back on the queue, unattempted."""
        self._put_back(message, attempts_before, slot, 0, "started and not put back")
        metrics.add_metric(name="DeliveriesNotStarted", unit=MetricUnit.Count, value=1)
        logger.info("delivery not started: invocation ending", extra=log_context(message))
        return Attempt("not_started", attempts_before)

    def _park(self, message: DeliveryMessage, endpoint: Endpoint) -> Endpoint | None:
        """Park the delivery of a disabled endpoint. Returns the endpoint when it turned out
        to be enabled again (the delivery then goes ahead), None when parked. Raises
        PartnerNotFound or EndpointNotFound when either was deleted meanwhile (nothing is
        left parked)."""
        if self.parked is None:  # a deployment without parking keeps the delivery queued
            raise RetryLater("endpoint disabled and no store for parked deliveries")
        # a PyMongoError (the store away) goes up to the caller, which defers the delivery
        key = self.parked.park(message)
        # Read past the cache: an operator may have just enabled the endpoint and
        # replayed what was parked, in which case this delivery must not stay behind.
        try:
            fresh = self.endpoints.get(endpoint.partner_id, endpoint.id)
        except (PartnerNotFound, EndpointNotFound):  # deleted meanwhile: nothing to park for
            self.parked.unpark(key)
            raise
        except PyMongoError:
            # parked, but whether the endpoint is enabled cannot be read: take it back and let
            # the caller defer it; if it cannot be taken back it stays parked (or a replay took
            # it), never parked and deferred both, which would deliver it twice
            try:
                taken = self.parked.unpark(key)
            except PyMongoError:
                taken = False
            if taken:
                raise
            logger.warning("delivery parked: endpoint not re-read", extra=log_context(message))
            return None
        if fresh.endpoint_disabled or not self.parked.unpark(key):
            metrics.add_metric(name="DeliveriesParked", unit=MetricUnit.Count, value=1)
            logger.info("delivery parked: endpoint disabled", extra=log_context(message))
            return None
        self.endpoints.partner_store.forget(endpoint.partner_id)
        return fresh

    def _hold(self, endpoint: Endpoint, message: DeliveryMessage) -> tuple[int, int | None]:
        """Seconds the delivery must wait (0: go now), and the rate-limit slot it keeps meanwhile."""
        paused = endpoint.paused_for()
        if paused > 0:
            # spread what comes back, so the end of a pause is not a burst; the slot is
            # given up (claimed anew after the pause)
            return min(MAX_DEFER_SECONDS, math.ceil(paused * (1 + 0.2 * self.rng.random()))), None
        if not endpoint.rate_limit or self.limiter is None:
            return 0, None
        slot = message.rateSlot
        if slot is None or slot < int(time.time()):
            # no slot yet, or its second went by (a deferred delivery back late): going now
            # would count against this second's slots
            try:
                slot = self.limiter.acquire(limiter_key(endpoint), endpoint.rate_limit)
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

    def _store_away(self, message: DeliveryMessage, attempts_before: int, exc: PyMongoError) -> Attempt:
        """The endpoint store (MongoDB) did not answer while admitting the delivery: defer it
        a short while, like a rate limit that cannot be read. The copy is a new message, so
        its receive count starts again at 1: an outage of any length (up to the MAX_HOPS
        re-sends, over a day at this pace) never reaches the unattempted-receives bound or
        the queue's redrive. Raises :class:`RetryLater` if the queue does not take the copy
        (the original then comes back after the queue's visibility timeout, a counted
        receive: SQS and MongoDB away together)."""
        seconds = math.ceil(STORE_UNAVAILABLE_DEFER_SECONDS * (1 + 0.5 * self.rng.random()))
        logger.warning(
            "delivery deferred: partner store unavailable",
            extra={**log_context(message), "error": type(exc).__name__, "seconds": seconds},
        )
        metrics.add_metric(name="DeliveriesStoreUnavailable", unit=MetricUnit.Count, value=1)
        return self._defer(message, attempts_before, seconds, message.rateSlot)

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

    def _pause(self, endpoint: Endpoint, result: HttpResult, attempt: Attempt) -> None:
        """The endpoint asked us to slow down: hold all its deliveries (not its partner's
        other endpoints') for a while. For as long as it asked (Retry-After, up to
        RETRY_AFTER_MAX_SECONDS), else a short fixed pause (the base retry delay, at least
        1 s): never this one delivery's backoff, which at a high attempt number would hold
        the whole endpoint for hours. The delivery itself still waits its own backoff
        (``attempt``)."""
        retry_after = parse_retry_after(result.retry_after)
        if retry_after is not None:
            seconds = min(retry_after, self.settings.retry_after_max_seconds)
        else:
            seconds = max(1.0, self.settings.webhook_retry_delay / 1000)
        if seconds <= 0:
            return
        context = {"partner_id": endpoint.partner_id, "endpoint_id": endpoint.id}
        try:
            self.endpoints.pause(endpoint, datetime.now(UTC) + timedelta(seconds=seconds))
        except PyMongoError as exc:
            logger.warning("endpoint not paused", extra={**context, "error": type(exc).__name__})
            return
        logger.info("endpoint paused", extra={**context, "status": result.status, "seconds": seconds})
