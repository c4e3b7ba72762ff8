"""Endpoint health: failure streaks, automatic disabling, and the deliveries parked meanwhile.

Each partner document carries its failure streak (``consecutiveFailures`` and
``failingSince``). A deliver invocation records the outcome of every attempt and writes
the streaks once at its end, as it writes the delivery log: a healthy partner costs no
write at all, a failing one one update per invocation. When a streak is at least
ENDPOINT_DISABLE_AFTER_FAILURES attempts long *and* has lasted
ENDPOINT_DISABLE_AFTER_SECONDS (Svix's rule: every attempt failing for 5 days), the
endpoint is disabled, once, by whichever deliverer gets there first.

Deliveries for a disabled endpoint are parked in ``parkedDeliveries`` (kept, not
dropped); re-enabling the endpoint sends them back to the delivery queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from .models import DeliveryMessage
from .observability import logger
from .partners import Partner, PartnerStore

WRITE_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class DisablePolicy:
    failures: int  # 0: never disable
    seconds: float

    def reached(self, failures: int, failing_since: datetime, now: datetime) -> bool:
        return (
            self.failures > 0
            and failures >= self.failures
            and (now - failing_since).total_seconds() >= self.seconds
        )


@dataclass(frozen=True)
class Disabled:
    """An endpoint this invocation disabled."""

    partner_id: str
    name: str
    consecutive_failures: int
    failing_since: datetime
    disabled_at: datetime
    reason: str


@dataclass
class _Outcomes:
    partner: Partner
    results: list[tuple[bool, datetime, str | None]]


class EndpointHealth:
    def __init__(
        self,
        store: PartnerStore,
        policy: DisablePolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        self._pending: dict[str, _Outcomes] = {}
        # partners this process saw failing: a success resets them even while the cached
        # partner still shows the old, healthy streak
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    def record(self, partner: Partner, ok: bool, error: str | None = None) -> None:
        with self._lock:
            pending = self._pending.setdefault(partner.id, _Outcomes(partner, []))
            pending.results.append((ok, self._clock(), error))

    def flush(self) -> list[Disabled]:
        """Write this invocation's streaks; never raises. Returns the endpoints it disabled."""
        with self._lock:
            pending, self._pending = self._pending, {}
        disabled = []
        for partner_id, outcomes in pending.items():
            try:
                with pymongo.timeout(WRITE_TIMEOUT_SECONDS):
                    done = self._write(partner_id, outcomes)
            except PyMongoError as exc:
                logger.warning(
                    "endpoint health not written",
                    extra={"partner_id": partner_id, "error": type(exc).__name__},
                )
                continue
            if done is not None:
                disabled.append(done)
        return disabled

    def _write(self, partner_id: str, outcomes: _Outcomes) -> Disabled | None:
        results = outcomes.results
        last_ok = max((i for i, (ok, _, _) in enumerate(results) if ok), default=None)
        partners = self.store.partners
        if last_ok is not None:
            failures_after = results[last_ok + 1 :]
            if not failures_after:
                with self._lock:
                    known_failing = partner_id in self._failing
                    self._failing.discard(partner_id)
                if known_failing or outcomes.partner.consecutive_failures:
                    partners.update_one(
                        {"_id": ObjectId(partner_id)},
                        {"$set": {"consecutiveFailures": 0}, "$unset": {"failingSince": ""}},
                    )
                return None
            doc = partners.find_one_and_update(
                {"_id": ObjectId(partner_id)},
                {"$set": {"consecutiveFailures": len(failures_after), "failingSince": failures_after[0][1]}},
                return_document=ReturnDocument.AFTER,
            )
        else:
            doc = partners.find_one_and_update(
                {"_id": ObjectId(partner_id)},
                {"$inc": {"consecutiveFailures": len(results)}, "$min": {"failingSince": results[0][1]}},
                return_document=ReturnDocument.AFTER,
            )
        with self._lock:
            self._failing.add(partner_id)
        if doc is None or doc.get("endpointDisabledAt") is not None:
            return None
        failures = int(doc.get("consecutiveFailures") or 0)
        since = doc["failingSince"]
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        now = self._clock()
        if not self.policy.reached(failures, since, now):
            return None
        last_error = results[-1][2] or "delivery failed"
        reason = f"{failures} consecutive failed attempts since {since.isoformat()}; last: {last_error}"[:500]
        if not self.store.disable_endpoint(partner_id, reason):
            return None  # another deliverer disabled it first
        return Disabled(partner_id, outcomes.partner.name, failures, since, now, reason)


class ParkedDeliveries:
    """Deliveries held for a disabled endpoint, one document per (partner, event)."""

    def __init__(self, db: Database[Any], ttl_days: float = 30) -> None:
        self.parked = db["parkedDeliveries"]
        self.ttl = timedelta(days=ttl_days)
        self._indexed = False

    def ensure_indexes(self) -> None:
        self.parked.create_index([("partnerId", ASCENDING), ("parkedAt", ASCENDING)])
        self.parked.create_index("parkedAt", expireAfterSeconds=int(self.ttl.total_seconds()))
        self._indexed = True

    def park(self, message: DeliveryMessage) -> str:
        """Keep the delivery; raises PyMongoError when it could not be kept."""
        if not self._indexed:
            self.ensure_indexes()
        key = f"{message.partnerId}:{message.event.eventId}"
        with suppress(DuplicateKeyError):  # parked already (the same message received twice)
            self.parked.insert_one(
                {
                    "_id": key,
                    "partnerId": message.partnerId,
                    "event": message.event.model_dump(),
                    "parkedAt": datetime.now(UTC),
                }
            )
        return key

    def unpark(self, key: str) -> bool:
        """Take one parked delivery back; False when someone else (a replay) took it first."""
        return self.parked.delete_one({"_id": key}).deleted_count == 1

    def count(self, partner_id: str) -> int:
        return self.parked.count_documents({"partnerId": partner_id})

    def oldest(self, partner_id: str, limit: int) -> Iterator[tuple[str, DeliveryMessage]]:
        for doc in self.parked.find({"partnerId": partner_id}).sort("parkedAt", ASCENDING).limit(limit):
            yield doc["_id"], DeliveryMessage(partnerId=partner_id, event=doc["event"])

    def remove(self, keys: list[str]) -> None:
        if keys:
            self.parked.delete_many({"_id": {"$in": keys}})
