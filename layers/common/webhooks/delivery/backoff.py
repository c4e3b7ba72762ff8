"""Exponential backoff in whole seconds, as SQS visibility timeouts are (dispatch's store
retries; a delivery's retries follow its schedule: delivery/schedule.py), a receiver's
Retry-After, and the visibility cap."""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..config import SQS_MAX_VISIBILITY_SECONDS

JITTER = 0.2
# delta-seconds is ASCII digits only: str.isdigit() also takes "²" or "٣", which float() refuses
_DELTA_SECONDS = re.compile(r"[0-9]+")


def retry_delay_seconds(
    attempt: int,
    base_delay_ms: int,
    *,
    retry_after: float | None = None,
    retry_after_max: int = 3600,
    rng: random.Random | None = None,
) -> int:
    """Seconds to wait before attempt ``attempt + 1``, after attempt ``attempt`` failed.

    ``base * 2^(attempt-1)`` with up to 20% jitter taken off (never added, so a whole-second
    schedule stays on its seconds after rounding up), then rounded up to a whole second,
    at least 1 and at most SQS's 43,200. A receiver's ``Retry-After`` can lengthen the wait,
    up to ``retry_after_max``, never shorten it.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    factor = 1 - JITTER * (rng or random).random()
    delay_ms = base_delay_ms * (2 ** min(attempt - 1, 32)) * factor
    seconds = max(1, math.ceil(delay_ms / 1000 - 1e-9))
    seconds = lengthened_by_retry_after(seconds, retry_after, retry_after_max)
    return int(min(seconds, SQS_MAX_VISIBILITY_SECONDS))


def lengthened_by_retry_after(seconds: int, retry_after: float | None, retry_after_max: int) -> int:
    """``seconds``, or a receiver's ``Retry-After`` (capped at ``retry_after_max``) if longer:
    it lengthens a wait, never shortens it."""
    if retry_after is not None and retry_after > 0:
        return max(seconds, math.ceil(min(retry_after, retry_after_max)))
    return seconds


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if unusable."""
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None  # not a date either: the receiver's header is ignored, the backoff stands


def visibility_cap(received_at: float, now: float) -> int:
    """The longest visibility timeout SQS accepts now for a message received at ``received_at``
    (epoch seconds): 12 hours from the receive, less the time spent since. SQS refuses more."""
    return max(0, math.floor(SQS_MAX_VISIBILITY_SECONDS - max(0.0, now - received_at)))
