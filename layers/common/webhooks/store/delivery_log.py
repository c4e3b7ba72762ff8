"""The delivery log: every attempt, in MongoDB (the events replay reads: :mod:`.event_store`).

Each attempt records the endpoint it went to (``endpointId``). Documents written before
endpoints existed have none: they were all to the partner's first endpoint, and every reader
here treats them so.

Attempts are buffered during a deliver invocation and written in one insert at its end,
under a short time limit; a failed write is logged and dropped, never retried into the
delivery path.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pymongo
from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import PyMongoError

from ..endpoints.model import ENDPOINT_ID_PREFIX, first_endpoint_id
from ..errors import WebhooksError
from ..observability import logger
from .stats import DeliveryStats

LOG_WRITE_TIMEOUT_SECONDS = 0.5
EXCERPT_BYTES = 1024
StatusFilter = Literal["delivered", "failed"]


class BadCursor(WebhooksError):
    """A page cursor this API did not hand out."""


@dataclass(frozen=True)
class AttemptRecord:
    event_id: str
    event_type: str
    partner_id: str
    attempt: int
    outcome: str  # delivered | retry | dead_lettered
    status: int | None
    latency_ms: float
    error_class: str | None
    error: str | None
    response_excerpt: bytes
    at: datetime
    endpoint_id: str | None = None  # None: the partner's first endpoint

    def document(self) -> dict[str, Any]:
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "partnerId": self.partner_id,
            "endpointId": self.endpoint_id or first_endpoint_id(self.partner_id),
            "attempt": self.attempt,
            "outcome": self.outcome,
            "statusCode": self.status,
            "latencyMs": round(self.latency_ms, 1),
            "errorClass": self.error_class,
            "errorMessage": (self.error or None) and str(self.error)[:500],
            "responseBody": self.response_excerpt[:EXCERPT_BYTES].decode("utf-8", "replace"),
            "timestamp": self.at,
        }


def endpoint_of(doc: dict[str, Any]) -> str:
    """The endpoint an attempt went to (an attempt logged before endpoints: the first)."""
    return str(doc.get("endpointId") or first_endpoint_id(str(doc["partnerId"])))


def made_to(endpoint_id: str, partner_id: str | None = None) -> dict[str, Any]:
    """The query for attempts made to an endpoint (of ``partner_id``, or of any partner). The
    first endpoint's also match the attempts logged without an endpointId: its id names its
    partner (``ep_<partnerId>``)."""
    if partner_id is not None:
        first = endpoint_id == first_endpoint_id(partner_id)
        return {"endpointId": {"$in": [None, endpoint_id]} if first else endpoint_id}
    if not endpoint_id.startswith(ENDPOINT_ID_PREFIX):
        return {"endpointId": endpoint_id}
    owner = endpoint_id.removeprefix(ENDPOINT_ID_PREFIX)
    return {"$or": [{"endpointId": endpoint_id}, {"endpointId": None, "partnerId": owner}]}


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """An attempt as the APIs and CLI show it."""
    at = doc["timestamp"]
    return {
        "id": str(doc["_id"]),
        "eventId": doc["eventId"],
        "eventType": doc["eventType"],
        "partnerId": doc["partnerId"],
        "endpointId": endpoint_of(doc),
        "attempt": doc["attempt"],
        "outcome": doc["outcome"],
        "statusCode": doc.get("statusCode"),
        "latencyMs": doc.get("latencyMs"),
        "errorClass": doc.get("errorClass"),
        "errorMessage": doc.get("errorMessage"),
        "responseBody": doc.get("responseBody", ""),
        "timestamp": (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat(),
    }


class DeliveryLog:
    def __init__(self, db: Database[Any], ttl_days: float = 30, enabled: bool = True) -> None:
        self.attempts = db["deliveryAttempts"]
        self.ttl = timedelta(days=ttl_days)
        self.enabled = enabled
        self.stats = DeliveryStats(db, ttl_days)  # the console's counts, kept as attempts are logged
        self._indexed = False

    def ensure_indexes(self) -> None:
        self.attempts.create_index("timestamp", expireAfterSeconds=int(self.ttl.total_seconds()))
        # newest first by the attempt's time: _id order is the order of the log's writes,
        # which concurrent deliver invocations make in any order
        self.attempts.create_index(
            [("partnerId", ASCENDING), ("timestamp", DESCENDING), ("_id", DESCENDING)],
            name="by_partner_latest_attempt_first",
        )
        # one endpoint's page (the console's endpoint page, ?endpointId=): an endpoint id is
        # one partner's, so the partner need not lead; the first endpoint's attempts logged
        # before endpoints (no endpointId) come from the null range (or, with no partner
        # named, from the index above), until the log's TTL has expired them
        self.attempts.create_index(
            [("endpointId", ASCENDING), ("timestamp", DESCENDING), ("_id", DESCENDING)],
            name="by_endpoint_latest_attempt_first",
        )
        self.attempts.create_index([("eventId", ASCENDING), ("_id", ASCENDING)], name="by_event")
        self.attempts.create_index(
            [("timestamp", DESCENDING), ("_id", DESCENDING)], name="latest_attempt_first"
        )
        self.stats.ensure_indexes()
        self._indexed = True

    def record(self, attempt: AttemptRecord, buffer: list[dict[str, Any]]) -> None:
        """Buffer an attempt in ``buffer``: one invocation's own (several may run in a process)."""
        if self.enabled:
            buffer.append(attempt.document())

    def flush(self, buffer: list[dict[str, Any]]) -> int:
        """Write what ``buffer`` holds and empty it; never raises. Returns how many were written."""
        docs = buffer[:]
        buffer.clear()
        if not docs:
            return 0
        try:
            with pymongo.timeout(LOG_WRITE_TIMEOUT_SECONDS):
                if not self._indexed:
                    self.ensure_indexes()
                self.attempts.insert_many(docs, ordered=False)
            self.stats.record(docs)
            return len(docs)
        except PyMongoError as exc:
            logger.warning(
                "delivery log not written", extra={"records": len(docs), "error": type(exc).__name__}
            )
            return 0

    def by_partner(
        self,
        partner_id: str | None,
        *,
        status: StatusFilter | None = None,
        endpoint_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of attempts (one partner's, or every partner's with ``partner_id`` None;
        ``endpoint_id``: only those made to that endpoint), newest first, and the cursor of the
        next page (or None)."""
        query: dict[str, Any] = {} if partner_id is None else {"partnerId": partner_id}
        if endpoint_id is not None:
            query.update(made_to(endpoint_id, partner_id))  # no key in common with the query's
        if status == "delivered":
            query["outcome"] = "delivered"
        elif status == "failed":
            query["outcome"] = {"$in": ["retry", "dead_lettered"]}
        window: dict[str, Any] = {}
        if since:
            window["$gte"] = since
        if until:
            window["$lt"] = until
        if window:
            query["timestamp"] = window
        if cursor:
            query = {"$and": [query, self._after(partner_id, cursor)]}
        order = [("timestamp", DESCENDING), ("_id", DESCENDING)]  # _id: ties within a millisecond
        docs = list(self.attempts.find(query).sort(order).limit(limit + 1))
        page = docs[:limit]
        next_cursor = str(page[-1]["_id"]) if len(docs) > limit else None
        return [public(d) for d in page], next_cursor

    def _after(self, partner_id: str | None, cursor: str) -> dict[str, Any]:
        """The rows after the cursor's (the last row of the previous page, by its _id)."""
        try:
            oid = ObjectId(cursor)
        except (InvalidId, TypeError):
            raise BadCursor("cursor is not one this API returned") from None
        mine = {} if partner_id is None else {"partnerId": partner_id}
        last = self.attempts.find_one({"_id": oid, **mine}, {"timestamp": 1})
        # a row gone meanwhile (expired): the end of the second its id was made in (an id holds
        # whole seconds; the attempt was before it): a row of that second may come again,
        # none is skipped
        at = last["timestamp"] if last else oid.generation_time + timedelta(seconds=1)
        return {"$or": [{"timestamp": {"$lt": at}}, {"timestamp": at, "_id": {"$lt": oid}}]}

    def last_delivered(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
        """For (eventId, endpointId) pairs, when each was last delivered (absent: never)."""
        if not keys:
            return {}
        found: dict[tuple[str, str], datetime] = {}
        query = {"eventId": {"$in": sorted({e for e, _ in keys})}, "outcome": "delivered"}
        fields = {"eventId": 1, "partnerId": 1, "endpointId": 1, "timestamp": 1}
        for doc in self.attempts.find(query, fields):
            key = (doc["eventId"], endpoint_of(doc))
            at = doc["timestamp"] if doc["timestamp"].tzinfo else doc["timestamp"].replace(tzinfo=UTC)
            if key in keys and (key not in found or at > found[key]):
                found[key] = at
        return found

    def by_event(
        self, event_id: str, partner_id: str | None = None, endpoint_id: str | None = None
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"eventId": event_id}
        if partner_id:
            query["partnerId"] = partner_id
        if endpoint_id is not None:
            query.update(made_to(endpoint_id, partner_id or None))
        order = [("timestamp", ASCENDING), ("_id", ASCENDING)]  # an event has few attempts
        return [public(d) for d in self.attempts.find(query).sort(order)]

    def failed_since(self, partner_id: str, since: datetime, endpoint_id: str | None = None) -> list[str]:
        """Event ids whose delivery to the partner (``endpoint_id``: to that endpoint of it)
        ended dead-lettered since ``since`` and was not delivered afterwards (by a redrive or a
        replay): what "recover" resends."""
        mine: dict[str, Any] = {"partnerId": partner_id}
        if endpoint_id is not None:
            mine.update(made_to(endpoint_id, partner_id))
        dead = self.attempts.distinct(
            "eventId", {**mine, "outcome": "dead_lettered", "timestamp": {"$gte": since}}
        )
        if not dead:
            return []
        delivered = set(
            self.attempts.distinct("eventId", {**mine, "outcome": "delivered", "eventId": {"$in": dead}})
        )
        return sorted(e for e in dead if e not in delivered)
