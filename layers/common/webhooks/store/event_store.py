"""The event store that replay reads: accepted events, saved by dispatch (one insert per
envelope, best effort) and kept under a TTL, so an operator can resend one later through the
normal delivery path."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pymongo
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from ..models import Event, to_json
from ..observability import logger
from .delivery_log import LOG_WRITE_TIMEOUT_SECONDS


class EventStore:
    """Accepted events, kept (TTL) so they can be replayed."""

    def __init__(self, db: Database[Any], ttl_days: float = 30) -> None:
        self.events = db["events"]
        self.ttl = timedelta(days=ttl_days)
        self._indexed = False

    def ensure_indexes(self) -> None:
        self.events.create_index("storedAt", expireAfterSeconds=int(self.ttl.total_seconds()))
        self._indexed = True

    def save(self, events: Iterable[Event]) -> None:
        """Best effort: a replay of an event that could not be saved answers 404."""
        now = datetime.now(UTC)
        docs = [_event_document(e, now) for e in events]
        if not docs:
            return
        try:
            with pymongo.timeout(LOG_WRITE_TIMEOUT_SECONDS):
                if not self._indexed:
                    self.ensure_indexes()
                self.events.insert_many(docs, ordered=False)
        except BulkWriteError:
            pass  # already saved (a redelivered envelope)
        except PyMongoError as exc:
            logger.warning(
                "events not saved for replay", extra={"events": len(docs), "error": type(exc).__name__}
            )

    def get(self, event_id: str) -> Event | None:
        doc = self.events.find_one({"_id": event_id})
        return _stored_event(doc) if doc else None

    def get_many(self, event_ids: list[str]) -> list[Event]:
        """The stored events among ``event_ids``, in that order: one query."""
        if not event_ids:
            return []
        found = {d["_id"]: d for d in self.events.find({"_id": {"$in": event_ids}})}
        return [_stored_event(found[i]) for i in event_ids if i in found]


def _event_document(event: Event, now: datetime) -> dict[str, Any]:
    # data as JSON text: producers' keys may hold what BSON keys cannot ("\0", a leading
    # "$", dots), and one such event must not fail the save of its whole envelope
    return {
        "_id": event.eventId,
        "eventType": event.eventType,
        "timestamp": event.timestamp,
        "dataJson": to_json(event.data),
        "storedAt": now,
    }


def _stored_event(doc: dict[str, Any]) -> Event:
    data = json.loads(doc["dataJson"]) if "dataJson" in doc else doc.get("data", {})
    return Event(eventId=doc["_id"], eventType=doc["eventType"], timestamp=doc["timestamp"], data=data)
