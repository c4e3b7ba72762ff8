"""The core of the deliver function: sign, POST, and decide what happens next.

Outcomes of one attempt:
- 2xx: delivered; the message is deleted.
- 410 Gone, or the last attempt failed: dead-lettered (sent to the delivery DLQ with
  the reason as message attributes) and then deleted from the main queue.
- any other failure with attempts left: the message's visibility timeout becomes the
  backoff delay and the record is reported failed, so SQS hands it back then.
- the partner was deleted or deactivated since: dropped, with a log line.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import requests
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from .backoff import parse_retry_after, retry_delay_seconds
from .config import Settings
from .delivery_log import AttemptRecord, DeliveryLog
from .http_delivery import HttpResult, post
from .models import DeliveryMessage, webhook_body
from .observability import MetricUnit, logger, metrics
from .partners import PartnerStore
from .queues import Queue
from .signing import signature_headers

Outcome = Literal["delivered", "retry", "dead_lettered", "dropped"]
RETRY_AFTER_STATUSES = (429, 503)


class RetryLater(Exception):
    """Reported as a batch item failure: SQS redelivers the message after its new visibility."""


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    attempt: int
    status: int | None = None
    error: str | None = None
    delay_seconds: int | None = None


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        store: PartnerStore,
        session: requests.Session,
        delivery_queue: Queue,
        delivery_dlq: Queue,
        rng: random.Random | None = None,
        log: DeliveryLog | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.session = session
        self.delivery_queue = delivery_queue
        self.delivery_dlq = delivery_dlq
        self.rng = rng or random.Random()
        self.log = log

    def deliver(self, body: str, receive_count: int, receipt_handle: str) -> Attempt:
        """One attempt for one message. Raises :class:`RetryLater` when SQS should retry it."""
        try:
            message = DeliveryMessage.model_validate_json(body)
        except ValidationError as exc:
            reason = f"malformed delivery message: {exc.errors()[0]['msg']}"
            self._dead_letter(body, {"attempts": receive_count, "lastError": reason})
            return Attempt("dead_lettered", receive_count, error=reason)

        event = message.event
        context = {"event_id": event.eventId, "partner_id": message.partnerId, "attempt": receive_count}
        partner = self.store.get_cached(message.partnerId)
        if partner is None or not partner.is_active:
            logger.warning("delivery dropped: partner missing or inactive", extra=context)
            metrics.add_metric(name="DeliveriesDropped", unit=MetricUnit.Count, value=1)
            return Attempt("dropped", receive_count)

        payload = webhook_body(event)
        # the partner's own headers first: the platform's (signatures, ids) always win
        headers = {
            **dict(partner.headers),
            **signature_headers(event.eventId, event.eventType, payload, partner.signing_secrets()),
        }
        timeout = partner.timeout_ms / 1000 if partner.timeout_ms else self.settings.timeout_seconds
        result = post(
            self.session, partner.webhook_url, payload, headers, timeout, self.settings.response_body_limit
        )
        attempt = self._decide(result, receive_count)
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
            receive_count,
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
            self._log(record)
            return attempt
        metrics.add_metric(name="AttemptFailed", unit=MetricUnit.Count, value=1)
        if attempt.outcome == "dead_lettered":
            self._dead_letter(
                body,
                {
                    "partnerId": message.partnerId,
                    "eventId": event.eventId,
                    "eventType": event.eventType,
                    "attempts": receive_count,
                    "lastStatus": result.status,
                    "lastError": (result.error or "")[:1000],
                },
            )
            logger.error(
                "delivery dead-lettered", extra={**context, "status": result.status, "error": result.error}
            )
            self._log(record)
            return attempt
        assert attempt.delay_seconds is not None
        try:
            self.delivery_queue.change_visibility(receipt_handle, attempt.delay_seconds)
        except (BotoCoreError, ClientError) as exc:
            # The message still comes back, after the queue's own visibility timeout.
            logger.warning("backoff not applied", extra={**context, "error": type(exc).__name__})
        self._log(record)
        raise RetryLater(f"attempt {receive_count} failed: {result.error}")

    def _log(self, record: AttemptRecord) -> None:
        if self.log is not None:
            self.log.record(record)

    def _decide(self, result: HttpResult, receive_count: int) -> Attempt:
        if result.ok:
            return Attempt("delivered", receive_count, result.status)
        if result.status == 410 or receive_count >= self.settings.webhook_max_attempts:
            return Attempt("dead_lettered", receive_count, result.status, result.error)
        retry_after = parse_retry_after(result.retry_after) if result.status in RETRY_AFTER_STATUSES else None
        delay = retry_delay_seconds(
            receive_count,
            self.settings.webhook_retry_delay,
            retry_after=retry_after,
            retry_after_max=self.settings.retry_after_max_seconds,
            rng=self.rng,
        )
        return Attempt("retry", receive_count, result.status, result.error, delay)

    def _dead_letter(self, body: str, attributes: dict[str, object]) -> None:
        """Raises if the DLQ is unreachable, so the message stays on the main queue."""
        try:
            self.delivery_dlq.send(body, attributes)
        except (BotoCoreError, ClientError) as exc:
            raise RetryLater(f"delivery DLQ unavailable: {type(exc).__name__}") from exc
        metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
