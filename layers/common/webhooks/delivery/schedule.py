"""Retry schedules: the seconds to wait between the attempts of a delivery.

A schedule is a list of waits; a delivery gets ``len(waits) + 1`` attempts, the first at once
and attempt ``n`` (from 2) after ``waits[n - 2]`` seconds. :class:`RetrySchedule` is one an
endpoint sets (``retrySchedule`` in the endpoints API, validated and bounded);
:func:`service_default` is the service's own; :func:`schedule_for` picks between them and
:func:`wait_before` turns either into whole seconds with jitter.

Wired into ``delivery/policy.py``: ``decide`` (and ``fallback_decision``) take the endpoint's
waits if it has them, else ``service_default(settings)`` (computed once per Settings):
dead-letter after ``schedule.attempts`` attempts (a 410 at once), else wait
``wait_before(schedule, number + 1, jitter)`` with the jitter taken off only, as the Node
service's backoff did (a wait is never longer than the one set), lengthened by a 429/503's
Retry-After up to RETRY_AFTER_MAX_SECONDS. The service default is WEBHOOK_RETRY_SCHEDULE if
set, else :data:`STANDARD_SCHEDULE` (about a day); WEBHOOK_MAX_ATTEMPTS or WEBHOOK_RETRY_DELAY
set keeps the Node service's doubling (:class:`NodeBackoff`, each wait capped at 12 h as
before); config.py refuses both kinds set at once. The template leaves all three blank by
default (read as unset), so the standard schedule applies on AWS unless a parameter says
otherwise.

A wait beyond SQS's 43,200 s visibility limit (an endpoint's may be 7 days) chains: the copy
back carries a ``notBefore`` and is hidden again on an early receive, and every
WAIT_RECEIVES_PER_COPY-th early receive sends a fresh copy instead (``delivery/flow_control.py``),
so no copy outlives the delivery queue's retention or reaches its redrive; the standard
schedule's longest wait, 10 h, needs no chaining.

The total is bounded at 30 days (config.SCHEDULE_BOUND_SECONDS); the age bound that ends a
looping delivery (queues.MAX_AGE_SECONDS, 35 days) leaves 5 days beyond it for pauses,
rate-limit deferrals and Retry-After lengthening.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Protocol

from pydantic import AfterValidator, ConfigDict, Field, RootModel, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from ..config import NODE_RETRY_SETTINGS, SCHEDULE_BOUND_SECONDS, SQS_MAX_VISIBILITY_SECONDS, Settings

MAX_WAITS = 30
MIN_WAIT_SECONDS = 1
# a long wait is held by a chain of copies, each received at most WAIT_RECEIVES_PER_COPY
# times (delivery/flow_control.py), so neither the queue's retention nor its redrive bounds it
MAX_WAIT_SECONDS = 7 * 86_400
MAX_TOTAL_SECONDS = SCHEDULE_BOUND_SECONDS  # 30 days
JITTER = 0.2  # the most wait_before moves a wait, either way
# the settings that, when set, keep the Node service's meaning (see service_default)
NODE_SETTINGS = frozenset(NODE_RETRY_SETTINGS)


class Schedule(Protocol):
    @property
    def attempts(self) -> int:
        """Attempts in total, the first included."""
        ...

    def seconds_before(self, attempt: int) -> float:
        """The wait before attempt ``attempt`` (2..attempts), without jitter."""
        ...


def _bounded_wait(seconds: int) -> int:
    if not MIN_WAIT_SECONDS <= seconds <= MAX_WAIT_SECONDS:
        raise PydanticCustomError(
            "retry_wait", "must be between 1 and {most} seconds (7 days)", {"most": MAX_WAIT_SECONDS}
        )
    return seconds


Wait = Annotated[
    StrictInt,
    AfterValidator(_bounded_wait),
    Field(json_schema_extra={"minimum": MIN_WAIT_SECONDS, "maximum": MAX_WAIT_SECONDS}),
]


class RetrySchedule(RootModel[tuple[Wait, ...]]):
    """Seconds to wait between attempts (attempts: waits + 1): 1 to 30 waits, whole seconds,
    each 1 s to 7 days, at most 30 days in all."""

    # A bad schedule fails validation with the wait's index as pydantic's loc: in the API,
    # "retrySchedule[3]: must be between 1 and 604800 seconds (7 days)".

    model_config = ConfigDict(frozen=True)
    # the length is checked by _bounded_length (pydantic's own check would also count the
    # waits that failed as missing); this only describes it in the JSON Schema
    root: Annotated[tuple[Wait, ...], Field(json_schema_extra={"minItems": 1, "maxItems": MAX_WAITS})]

    @model_validator(mode="before")
    @classmethod
    def _bounded_length(cls, value: object) -> object:
        # before the waits are read one by one, and in the API's words (a list, not a tuple)
        if not isinstance(value, list | tuple):
            raise PydanticCustomError("retry_schedule_type", "must be a list of waits in seconds")
        if not 1 <= len(value) <= MAX_WAITS:
            raise PydanticCustomError(
                "retry_schedule_length",
                "must list 1 to {most} waits (the attempts are one more), not {count}",
                {"most": MAX_WAITS, "count": len(value)},
            )
        return value

    @model_validator(mode="after")
    def _bounded_total(self) -> RetrySchedule:
        total = sum(self.root)
        if total > MAX_TOTAL_SECONDS:
            raise PydanticCustomError(
                "retry_schedule_total",
                "the waits add up to {total} seconds, more than 30 days ({most})",
                {"total": total, "most": MAX_TOTAL_SECONDS},
            )
        return self

    @property
    def waits(self) -> tuple[int, ...]:
        return self.root

    @property
    def attempts(self) -> int:
        return len(self.root) + 1

    def seconds_before(self, attempt: int) -> float:
        return float(self.root[attempt - 2])


@dataclass(frozen=True)
class NodeBackoff:
    """The Node service's schedule: ``max_attempts`` attempts, attempt n+1 after
    ``retry_delay_ms * 2^(n-1)`` ms (:func:`wait_before` caps each wait at SQS's 43,200 s,
    after the jitter, as the Node-compatible backoff always did). Unbounded by RetrySchedule's
    limits (100 attempts are allowed): config.py bounds the two settings together (30 days of
    waits at most)."""

    max_attempts: int
    retry_delay_ms: int

    @property
    def attempts(self) -> int:
        return self.max_attempts

    def seconds_before(self, attempt: int) -> float:
        # the exponent capped as delivery/backoff.py caps it: 2^32 ms is 50 days already
        return self.retry_delay_ms * (1 << min(attempt - 2, 32)) / 1000


# Standard Webhooks' recommendation, as Svix retries: 8 attempts over about 27.6 hours
STANDARD_SCHEDULE = RetrySchedule((5, 300, 1_800, 7_200, 18_000, 36_000, 36_000))


def service_default(settings: Settings) -> RetrySchedule | NodeBackoff:
    """The schedule of an endpoint without its own. WEBHOOK_MAX_ATTEMPTS or WEBHOOK_RETRY_DELAY
    set explicitly (to any value, its default included) keeps the Node service's meaning, the
    other one at its default; neither set: WEBHOOK_RETRY_SCHEDULE if set, else
    :data:`STANDARD_SCHEDULE`. Built once per distinct settings (cached)."""
    return _service_default(
        bool(settings.model_fields_set & NODE_SETTINGS),
        settings.webhook_max_attempts,
        settings.webhook_retry_delay,
        settings.webhook_retry_schedule,
    )


@lru_cache(maxsize=8)
def _service_default(
    node: bool, max_attempts: int, retry_delay_ms: int, waits: tuple[int, ...] | None
) -> RetrySchedule | NodeBackoff:
    # keyed by what decides it (not by Settings: two equal Settings may differ in what was set)
    if node:
        return NodeBackoff(max_attempts, retry_delay_ms)
    if waits is not None:
        return RetrySchedule(waits)  # validated by config already; again here, once
    return STANDARD_SCHEDULE


def schedule_for(settings: Settings, waits: Sequence[int] | None) -> Schedule:
    """An endpoint's own waits (validated when it was saved, so not again on every attempt),
    else the service default. None or no waits: the service default."""
    if waits:
        return RetrySchedule.model_construct(tuple(waits))
    return service_default(settings)


def wait_before(schedule: Schedule, attempt: int, jitter: float) -> int:
    """Whole seconds to wait before attempt ``attempt`` (2..``schedule.attempts``): the
    schedule's wait moved by ``jitter`` (a share, -0.2..0.2), rounded up, at least 1 s.
    A :class:`RetrySchedule`'s wait is not capped: one longer than SQS allows is the caller's
    to chain. A :class:`NodeBackoff`'s is capped at 43,200 s, second for second the Node
    service's backoff (delivery/backoff.py). ``decide`` only takes jitter off
    (``-0.2 * rng.random()``), so a whole-second wait keeps its seconds."""
    if not 2 <= attempt <= schedule.attempts:
        raise ValueError(f"attempt {attempt} is not a retry of this schedule (2..{schedule.attempts})")
    if not -JITTER <= jitter <= JITTER:
        raise ValueError(f"jitter {jitter} is outside -{JITTER}..{JITTER}")
    # less a nanosecond: 100 * (1 + 0.1) is 110.00000000000001 in floating point, and is 110 s
    seconds = max(MIN_WAIT_SECONDS, math.ceil(schedule.seconds_before(attempt) * (1 + jitter) - 1e-9))
    return min(seconds, SQS_MAX_VISIBILITY_SECONDS) if isinstance(schedule, NodeBackoff) else seconds
