"""Retry schedules: the seconds to wait between the attempts of a delivery.

A schedule is a list of waits; a delivery gets ``len(waits) + 1`` attempts, the first at once
and attempt ``n`` (from 2) after ``waits[n - 2]`` seconds. :class:`RetrySchedule` is one an
endpoint sets (``retrySchedule`` in the endpoints API, validated and bounded);
:func:`service_default` is the service's own; :func:`wait_before` turns either into whole
seconds with jitter.

Not wired in yet: this is a pure, self-contained piece of the endpoints issue (#33); today
``delivery/policy.py`` still decides with ``delivery/backoff.py`` (WEBHOOK_MAX_ATTEMPTS,
WEBHOOK_RETRY_DELAY, as the Node service did). Wired in, ``decide`` will take the endpoint's
``retrySchedule`` if it has one, else ``service_default(settings)`` (computed once per cold
start): dead-letter after ``schedule.attempts`` attempts, else wait
``wait_before(schedule, number + 1, jitter)``, lengthened by a Retry-After as today. A wait
beyond SQS's 43,200 s visibility limit chains as today's long waits do (the copy back with a
``notBefore``, hidden again on each early receive: ``delivery/flow_control.py``); the default
schedule's longest wait, 10 h, needs no chaining. The template passes WEBHOOK_MAX_ATTEMPTS and
WEBHOOK_RETRY_DELAY to every function today, so the wiring must leave them unset by default
(an empty parameter, read as unset) for the new default to apply on AWS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Protocol

from pydantic import AfterValidator, ConfigDict, Field, RootModel, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from ..config import Settings

MAX_WAITS = 30
MIN_WAIT_SECONDS = 1
MAX_WAIT_SECONDS = 7 * 86_400
MAX_TOTAL_SECONDS = 30 * 86_400
JITTER = 0.2  # the most wait_before moves a wait, either way
# the settings that, when set, keep the Node service's meaning (see service_default)
NODE_SETTINGS = frozenset({"webhook_max_attempts", "webhook_retry_delay"})


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
    ``retry_delay_ms * 2^(n-1)`` ms. Unbounded by RetrySchedule's limits (100 attempts are
    allowed): config.py bounds both settings, and each wait is capped or chained by the caller."""

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
    other one at its default; neither set: :data:`STANDARD_SCHEDULE`."""
    if settings.model_fields_set & NODE_SETTINGS:
        return NodeBackoff(settings.webhook_max_attempts, settings.webhook_retry_delay)
    return STANDARD_SCHEDULE


def wait_before(schedule: Schedule, attempt: int, jitter: float) -> int:
    """Whole seconds to wait before attempt ``attempt`` (2..``schedule.attempts``): the
    schedule's wait moved by ``jitter`` (a share, -0.2..0.2), rounded up, at least 1 s.
    Not capped: a wait longer than SQS allows is the caller's to chain. Today's backoff only
    takes jitter off (``-0.2 * rng.random()``), so a whole-second wait keeps its seconds."""
    if not 2 <= attempt <= schedule.attempts:
        raise ValueError(f"attempt {attempt} is not a retry of this schedule (2..{schedule.attempts})")
    if not -JITTER <= jitter <= JITTER:
        raise ValueError(f"jitter {jitter} is outside -{JITTER}..{JITTER}")
    # less a nanosecond: 100 * (1 + 0.1) is 110.00000000000001 in floating point, and is 110 s
    return max(MIN_WAIT_SECONDS, math.ceil(schedule.seconds_before(attempt) * (1 + jitter) - 1e-9))
