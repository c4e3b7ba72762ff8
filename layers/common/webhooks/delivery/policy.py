"""What one attempt comes to, and the plain decisions that settle it (tested one by one in
tests/unit/test_deliver_steps.py): an :class:`Attempt` and its outcome, or
:class:`RetryLater` when SQS should hand the message back; whether a delivery may go
(:func:`admission`); after the POST, :func:`decide` (and :func:`fallback_decision` when
deciding raised); whether the receiver asked every delivery to slow down."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ..config import Settings
from ..endpoints.model import Endpoint
from ..errors import WebhooksError
from ..partners.model import Partner
from .backoff import lengthened_by_retry_after, parse_retry_after
from .http import HttpResult
from .schedule import JITTER, schedule_for, wait_before

Outcome = Literal[
    "delivered", "retry", "dead_lettered", "dropped", "deferred", "parked", "not_started", "waiting"
]
RETRY_AFTER_STATUSES = (429, 503)


class RetryLater(WebhooksError):
    """Reported as a batch item failure: SQS redelivers the message after its new visibility."""


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    attempt: int
    status: int | None = None
    error: str | None = None
    delay_seconds: int | None = None


def admission(partner: Endpoint | Partner | None) -> Literal["drop", "park", "go"]:
    """No endpoint (or partner), or an inactive partner: drop. A disabled endpoint: park.
    Otherwise go on."""
    if partner is None or not partner.is_active:
        return "drop"
    return "park" if partner.endpoint_disabled else "go"


def decide(
    result: HttpResult,
    number: int,
    settings: Settings,
    rng: random.Random,
    schedule: Sequence[int] | None = None,
) -> Attempt:
    """Delivered (2xx); dead letter (410, or the schedule's last attempt); else retry after
    the schedule's wait, less up to 20% jitter, lengthened by a 429/503's Retry-After up to
    its cap. ``schedule``: the endpoint's own waits in seconds (validated), or None for the
    service default (delivery/schedule.py)."""
    if result.ok:
        return Attempt("delivered", number, result.status)
    waits = schedule_for(settings, schedule)
    if result.status == 410 or number >= waits.attempts:
        return Attempt("dead_lettered", number, result.status, result.error)
    # jitter taken off only, as the Node service's backoff: never longer than the wait set
    delay = wait_before(waits, number + 1, -JITTER * rng.random())
    if result.status in RETRY_AFTER_STATUSES:
        retry_after = parse_retry_after(result.retry_after)
        delay = lengthened_by_retry_after(delay, retry_after, settings.retry_after_max_seconds)
    return Attempt("retry", number, result.status, result.error, delay)


def fallback_decision(
    result: HttpResult, number: int, settings: Settings, schedule: Sequence[int] | None = None
) -> Attempt:
    """What :func:`decide` would say without reading the receiver's answer beyond its status
    (no Retry-After, no jitter): used when deciding raised, so the attempt still ends
    delivered, retried or dead-lettered."""
    if result.ok:
        return Attempt("delivered", number, result.status)
    waits = schedule_for(settings, schedule)
    if result.status == 410 or number >= waits.attempts:
        return Attempt("dead_lettered", number, result.status, result.error)
    return Attempt("retry", number, result.status, result.error, wait_before(waits, number + 1, 0.0))


def asks_to_slow_down(result: HttpResult) -> bool:
    """A 429, or a 503 with Retry-After: every delivery to that partner pauses."""
    return result.status == 429 or (result.status in RETRY_AFTER_STATUSES and bool(result.retry_after))
