"""Deliveries parked while their endpoint is disabled: kept in ``parkedDeliveries``, one
document per (partner, event), not dropped; re-enabling the endpoint sends them back to the
delivery queue."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ..models import DeliveryMessage


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
