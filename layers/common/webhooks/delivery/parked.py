"""Deliveries parked while their endpoint is disabled: kept in ``parkedDeliveries``, one
document per (endpoint, event), not dropped; re-enabling the endpoint sends them back to the
delivery queue.

A partner's first endpoint keeps the document shape it had before endpoints existed (key
``partnerId:eventId``, no ``endpointId``), so deliveries parked by an earlier version are
still found, counted and sent when that endpoint is enabled. Another endpoint's documents
carry its ``endpointId`` and have the key ``partnerId:endpointId:eventId``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from ..endpoints.model import first_endpoint_id
from ..models import DeliveryMessage


def other_endpoint_id(partner_id: str, endpoint_id: str | None) -> str | None:
    """``endpoint_id``, or None when it is the partner's first endpoint (either spelling)."""
    return None if endpoint_id in (None, first_endpoint_id(partner_id)) else endpoint_id


def parked_key(partner_id: str, endpoint_id: str | None, event_id: str) -> str:
    other = other_endpoint_id(partner_id, endpoint_id)
    return f"{partner_id}:{event_id}" if other is None else f"{partner_id}:{other}:{event_id}"


class ParkedDeliveries:
    """Deliveries held for a disabled endpoint, one document per (endpoint, event).

    ``endpoint_id`` arguments: None or the first endpoint's id mean the partner's first
    endpoint."""

    def __init__(self, db: Database[Any], ttl_days: float = 30) -> None:
        self.parked = db["parkedDeliveries"]
        self.ttl = timedelta(days=ttl_days)
        self._indexed = False

    def ensure_indexes(self) -> None:
        self.parked.create_index([("partnerId", ASCENDING), ("parkedAt", ASCENDING)])
        self.parked.create_index(
            [("partnerId", ASCENDING), ("endpointId", ASCENDING), ("parkedAt", ASCENDING)]
        )
        self.parked.create_index("parkedAt", expireAfterSeconds=int(self.ttl.total_seconds()))
        self._indexed = True

    def park(self, message: DeliveryMessage) -> str:
        """Keep the delivery; raises PyMongoError when it could not be kept."""
        if not self._indexed:
            self.ensure_indexes()
        partner_id, event_id = message.partnerId, message.event.eventId
        other = other_endpoint_id(partner_id, message.endpointId)
        key = parked_key(partner_id, other, event_id)
        doc: dict[str, Any] = {"_id": key, "partnerId": partner_id}
        if other is not None:
            doc["endpointId"] = other
        doc.update(event=message.event.model_dump(), parkedAt=datetime.now(UTC))
        with suppress(DuplicateKeyError):  # parked already (the same message received twice)
            self.parked.insert_one(doc)
        return key

    def unpark(self, key: str) -> bool:
        """Take one parked delivery back; False when someone else (a replay) took it first."""
        return self.parked.delete_one({"_id": key}).deleted_count == 1

    def holds(self, partner_id: str, event_id: str) -> bool:
        """Whether a delivery of ``event_id`` is parked for any endpoint of the partner."""
        return (
            self.parked.find_one({"partnerId": partner_id, "event.eventId": event_id}, {"_id": 1}) is not None
        )

    def count(self, partner_id: str, endpoint_id: str | None = None) -> int:
        """How many deliveries the endpoint has parked (default: the partner's first)."""
        return self.parked.count_documents(self._match(partner_id, endpoint_id))

    def oldest(
        self, partner_id: str, endpoint_id: str | None, limit: int
    ) -> Iterator[tuple[str, DeliveryMessage]]:
        """The endpoint's parked deliveries, oldest first, as (key for :meth:`remove`, the
        delivery message to send)."""
        other = other_endpoint_id(partner_id, endpoint_id)
        found = self.parked.find(self._match(partner_id, other)).sort("parkedAt", ASCENDING).limit(limit)
        for doc in found:
            yield doc["_id"], DeliveryMessage(partnerId=partner_id, endpointId=other, event=doc["event"])

    def remove(self, keys: list[str]) -> None:
        if keys:
            self.parked.delete_many({"_id": {"$in": keys}})

    @staticmethod
    def _match(partner_id: str, endpoint_id: str | None) -> dict[str, Any]:
        # the first endpoint's documents have no endpointId: None matches a missing field
        return {"partnerId": partner_id, "endpointId": other_endpoint_id(partner_id, endpoint_id)}
