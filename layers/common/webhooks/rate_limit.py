"""Per-partner rate limits, shared by every deliverer through MongoDB.

A limit is N deliveries per second. Each partner has one counter document per
wall-clock second (``rateLimitWindows``, ``_id = "<partnerId>:<second>"``), raised with
one atomic ``$inc``; a delivery may go when the counter was below N before its own
increment. So however many deliver invocations run at once, in however many processes,
one partner gets at most N requests per second.

A deliver invocation claims the slots its whole batch needs in one round trip
(:meth:`RateLimiter.reserve`), then hands them out to its concurrent POSTs
(:meth:`RateLimiter.acquire`); slots left from an earlier second are never used. A
delivery that gets no slot is told how long to wait: its position past the limit divided
by the limit, so a backlog comes back spread over the following seconds rather than all
at once. Every delivery past the limit is counted too (that is how it learns its place), so
a deferral costs one more round trip: deferrals are the slow path anyway (each is an SQS
send).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

MAX_DEFER_SECONDS = 900  # SQS's DelaySeconds limit
WINDOW_TTL = timedelta(minutes=5)


@dataclass
class _Window:
    """What this process claimed of one partner's current second and has not handed out."""

    second: int
    slots: int = 0  # deliveries that may go now
    # places past the limit (1 = first one over), for deliveries that must wait
    places: list[int] = field(default_factory=list)


class RateLimiter:
    def __init__(self, db: Database[Any], clock: Callable[[], float] = time.time) -> None:
        self.windows = db["rateLimitWindows"]
        self._clock = clock
        self._local: dict[str, _Window] = {}
        self._lock = threading.Lock()
        self._indexed = False

    def ensure_indexes(self) -> None:
        self.windows.create_index("expiresAt", expireAfterSeconds=0)
        self._indexed = True

    def reserve(self, partner_id: str, limit: int, count: int) -> None:
        """Claim up to ``count`` slots of this second for deliveries about to start."""
        second = int(self._clock())
        with self._lock:
            window = self._local.get(partner_id)
            if window is not None and window.second == second and window.slots + len(window.places) >= count:
                return
        self._claim(partner_id, limit, count, second)

    def acquire(self, partner_id: str, limit: int) -> int:
        """0 when a delivery may go now; otherwise the seconds it should wait first."""
        second = int(self._clock())
        for _ in range(2):
            with self._lock:
                window = self._local.get(partner_id)
                if window is not None and window.second == second:
                    if window.slots > 0:
                        window.slots -= 1
                        return 0
                    if window.places:
                        return _wait_seconds(window.places.pop(0), limit)
            self._claim(partner_id, limit, 1, second)
        return 1  # the second ended while we were asking: try again in the next one

    def _claim(self, partner_id: str, limit: int, count: int, second: int) -> None:
        if not self._indexed:
            self.ensure_indexes()
        key = f"{partner_id}:{second}"
        update = {
            "$inc": {"count": count},
            "$setOnInsert": {"expiresAt": datetime.fromtimestamp(second, UTC) + WINDOW_TTL},
        }
        try:
            doc = self.windows.find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:  # two first claims of the same second raced: one upserted
            doc = self.windows.find_one_and_update(
                {"_id": key}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        total = int(doc["count"]) if doc else count
        before = total - count
        granted = max(0, min(count, limit - before))
        with self._lock:
            window = self._local.get(partner_id)
            if window is None or window.second != second:
                window = self._local[partner_id] = _Window(second)
            window.slots += granted
            # every claim past the limit has its own place in the counter: waits are spread
            # exactly, however many deliverers claim at once
            window.places += range(before + granted - limit + 1, total - limit + 1)


def _wait_seconds(position_past_limit: int, limit: int) -> int:
    return min(MAX_DEFER_SECONDS, max(1, math.ceil(position_past_limit / limit)))
