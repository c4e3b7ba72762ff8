"""Per-endpoint rate limits, shared by every deliverer through MongoDB.

A limit is N deliveries per second. Each endpoint has one document (``rateLimits``, keyed by
:func:`limiter_key`) whose
``next`` is the time of its next free slot, in microseconds; slots are ``ceil(1e6 / N)``
apart, so no second holds more than N of them. Claiming slots is one atomic update:
``next = max(next, now) + count * spacing``. Starting from now, not from the start of the
second, means a burst that begins late in a second gets only that second's remaining
slots, so its requests cannot land in the next second on top of that second's own. Every
delivery gets its own slot, and with it the wall-clock second it may go in:

- this second: it goes now;
- a later second (the endpoint is at its limit): it waits for that second, and since it
  keeps its slot it is not counted again when it comes back. A backlog therefore drains
  at exactly N per second, first come first served, each delivery deferred at most once.

A deliver invocation claims the slots its whole batch needs in one round trip
(:meth:`RateLimiter.reserve`), then hands them out to its concurrent POSTs
(:meth:`RateLimiter.acquire`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, OperationFailure

from ..endpoints.model import Endpoint

MICROS = 1_000_000
KEEP_IDLE = timedelta(days=1)  # an endpoint's document outlives its last claim by this much


def limiter_key(endpoint: Endpoint) -> str:
    """The counter of an endpoint: a first endpoint keeps its partner's id, the key its
    counter had before endpoints existed (so a running backlog keeps its slots)."""
    return endpoint.partner_id if endpoint.first else endpoint.id


def slot_spacing(limit: int) -> int:
    """Microseconds between two slots: rounded up, so a second never holds more than ``limit``."""
    return -(-MICROS // limit)


class RateLimiter:
    def __init__(self, db: Database[Any], clock: Callable[[], float] = time.time) -> None:
        self.counters = db["rateLimits"]
        self._clock = clock
        self._claimed: dict[str, deque[int]] = {}  # per key: seconds of slots not handed out
        self._lock = threading.Lock()
        self._indexed = False

    def ensure_indexes(self) -> None:
        self.counters.create_index("expiresAt", expireAfterSeconds=0)
        self._indexed = True

    def reserve(self, key: str, limit: int, count: int) -> None:
        """Claim ``count`` slots for deliveries about to start, in one round trip."""
        with self._lock:
            if len(self._unexpired(key)) >= count:
                return
        seconds = self._claim(key, limit, count)
        with self._lock:
            self._claimed.setdefault(key, deque()).extend(seconds)

    def acquire(self, key: str, limit: int) -> int:
        """The wall-clock second (epoch) this delivery may go in: now or later."""
        with self._lock:
            claimed = self._unexpired(key)
            if claimed:
                return claimed.popleft()
        return self._claim(key, limit, 1)[0]

    def _unexpired(self, key: str) -> deque[int]:
        """Claimed slots not handed out, without those whose second went by (unused: lost)."""
        claimed = self._claimed.setdefault(key, deque())
        current = int(self._clock())
        while claimed and claimed[0] < current:
            claimed.popleft()
        return claimed

    def _claim(self, key: str, limit: int, count: int) -> list[int]:
        if not self._indexed:
            self.ensure_indexes()
        spacing = slot_spacing(limit)
        now = self._clock()
        now_micros = int(now * MICROS)
        taken = count * spacing
        update = [
            {
                "$set": {
                    "next": {"$add": [{"$max": [{"$ifNull": ["$next", now_micros]}, now_micros]}, taken]},
                    "expiresAt": datetime.fromtimestamp(now, UTC) + KEEP_IDLE,
                }
            }
        ]
        doc = self.counters.find_one_and_update({"_id": key}, update, return_document=ReturnDocument.AFTER)
        if doc is None:
            # the endpoint's first claim: create the document, then claim. Not an upsert:
            # two racing upserts can leave it unclear whether a claim was counted once or twice
            with suppress(DuplicateKeyError):
                self.counters.insert_one({"_id": key, "next": 0})
            doc = self.counters.find_one_and_update(
                {"_id": key}, update, return_document=ReturnDocument.AFTER
            )
        if doc is None:
            raise OperationFailure(f"rate limit counter of {key} not found after creating it")
        start = int(doc["next"]) - taken
        return [(start + k * spacing) // MICROS for k in range(count)]
