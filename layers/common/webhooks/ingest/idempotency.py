"""Idempotency-Key support for the events API, stored in MongoDB with a TTL index.

Powertools' idempotency utility ships persistence for DynamoDB and Redis/Valkey, none for
MongoDB, and it keys a record on the handler's input; here the key is a request header,
scoped to the partner, and only an enqueue's answer is kept (a refused request releases
the key). So a small MongoDB equivalent: the first request with a key records an
in-progress marker, then its answer; a retry with the same key (same caller) gets that
answer back, while one still running or with another body is refused
(:class:`IdempotencyKeyInUse`, :class:`IdempotencyKeyReused`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ..errors import Conflict, Unprocessable

IN_PROGRESS_STALE_AFTER = timedelta(seconds=60)


class IdempotencyKeyInUse(Conflict):
    """The key is held by a request still being processed: retry once it has finished."""


class IdempotencyKeyReused(Unprocessable):
    """The key was already used with a different body: a new request needs a new key."""


IdempotencyConflict = (IdempotencyKeyInUse, IdempotencyKeyReused)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]


def request_fingerprint(body: str | bytes) -> str:
    raw = body.encode("utf-8") if isinstance(body, str) else body
    return hashlib.sha256(raw).hexdigest()


class IdempotencyStore:
    def __init__(
        self,
        db: Database[Any],
        ttl: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.collection = db["idempotencyKeys"]
        self.ttl = ttl
        self._clock = clock
        self._indexed = False

    def ensure_indexes(self) -> None:
        """The TTL index that expires keys; made on first use, a no-op once it exists."""
        self.collection.create_index("expiresAt", expireAfterSeconds=0)
        self._indexed = True

    @staticmethod
    def _id(partner_id: str, key: str) -> str:
        return hashlib.sha256(f"{partner_id}\x00{key}".encode()).hexdigest()

    def begin(self, partner_id: str, key: str, fingerprint: str) -> StoredResponse | None:
        """None: go ahead (the key is now held). A response: replay it. Raises on conflict."""
        if not self._indexed:
            self.ensure_indexes()
        now = self._clock()
        doc_id = self._id(partner_id, key)
        try:
            self.collection.insert_one(
                {
                    "_id": doc_id,
                    "fingerprint": fingerprint,
                    "status": "in_progress",
                    "createdAt": now,
                    "expiresAt": now + self.ttl,
                }
            )
            return None
        except DuplicateKeyError:
            pass
        doc = self.collection.find_one({"_id": doc_id})
        if doc is None or _expired(doc, now):
            self.collection.delete_one({"_id": doc_id})
            return self.begin(partner_id, key, fingerprint)
        if doc["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused("Idempotency-Key was already used with a different request body")
        if doc["status"] == "completed":
            return StoredResponse(doc["response"]["statusCode"], doc["response"]["body"])
        started = _aware(doc["createdAt"])
        if now - started > IN_PROGRESS_STALE_AFTER:
            # The first request died mid-way; let this one take the key over.
            taken = self.collection.find_one_and_update(
                {"_id": doc_id, "status": "in_progress", "createdAt": doc["createdAt"]},
                {"$set": {"createdAt": now}},
            )
            if taken is not None:
                return None
        raise IdempotencyKeyInUse("A request with this Idempotency-Key is still in progress")

    def complete(self, partner_id: str, key: str, status_code: int, body: dict[str, Any]) -> None:
        self.collection.update_one(
            {"_id": self._id(partner_id, key)},
            {"$set": {"status": "completed", "response": {"statusCode": status_code, "body": body}}},
        )

    def release(self, partner_id: str, key: str) -> None:
        """Forget the key (the request enqueued nothing), so a retry can do the work."""
        self.collection.delete_one({"_id": self._id(partner_id, key), "status": "in_progress"})


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _expired(doc: dict[str, Any], now: datetime) -> bool:
    return _aware(doc["expiresAt"]) <= now
