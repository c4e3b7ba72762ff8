"""Failed credentials per source address, counted in MongoDB so that every API worker and
Lambda instance shares one count (an in-process count gave each worker its own budget).

Each (kind, source) has one document in ``authFailures``: the times of its latest
failures, newest last, at most ``limit + 1`` of them (``$push`` with ``$slice``), and an
``expiresAt`` for the TTL index. A failure is recorded in one atomic update that returns
the document, so deciding costs no second round trip: more than ``limit`` failures within
``window`` seconds and the caller is told how long to wait.

Only failures are counted, and the caller decides what a throttled source may still do:
the credentials in webhooks.partners.credentials still accept the right key from a throttled
source, so nobody sharing an operator's or a producer's address can lock it out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from ..observability import logger

COLLECTION = "authFailures"


class FailureThrottle:
    def __init__(
        self,
        db: Database[Any],
        kind: str,
        limit: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.failures = db[COLLECTION]
        self.kind = kind
        self.limit = limit
        self.window = window
        self._clock = clock
        self._indexed = False

    def ensure_indexes(self) -> None:
        self.failures.create_index("expiresAt", expireAfterSeconds=0)
        self._indexed = True

    def failed(self, source: str) -> float:
        """Record a failure from ``source``; the seconds it must now wait (0: not throttled).

        A database that is away answers 0: the throttle never turns a refusal into a 503,
        and never blocks anyone by itself."""
        try:
            return self._record(source)
        except PyMongoError as exc:
            logger.warning("failed-credential count unavailable", extra={"error": type(exc).__name__})
            return 0.0

    def _record(self, source: str) -> float:
        if not self._indexed:
            self.ensure_indexes()
        now = self._clock()
        update = {
            "$push": {"at": {"$each": [now], "$slice": -(self.limit + 1)}},
            "$set": {"expiresAt": datetime.fromtimestamp(now, UTC) + timedelta(seconds=self.window)},
        }
        key = {"_id": f"{self.kind}|{source}"}
        try:
            doc = self.failures.find_one_and_update(
                key, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:  # two first failures raced to create it: the other won
            doc = self.failures.find_one_and_update(key, update, return_document=ReturnDocument.AFTER)
        recent: list[float] = [t for t in (doc or {}).get("at", []) if t > now - self.window]
        if len(recent) <= self.limit:
            return 0.0
        return recent[0] + self.window - now
