"""The delivery log: every attempt, by partner (paged) or by event."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput
from ..store.delivery_log import BadCursor, DeliveryLog
from ..store.event_store import EventStore
from .answers import DeliveryPage, EventDeliveries, answer
from .schemas import DeliveryQuery


class DeliveryLogService:
    def __init__(self, log: DeliveryLog, events: EventStore | None = None) -> None:
        self.log = log
        self.events = events

    def of_partner(self, partner_id: str | None, query: DeliveryQuery) -> dict[str, Any]:
        """A page of a partner's attempts (every partner's with None), newest first, and the
        cursor of the next page."""
        if query.eventId:
            return answer(
                DeliveryPage, {"deliveries": self.log.by_event(query.eventId, partner_id), "nextCursor": None}
            )
        try:
            page, cursor = self.log.by_partner(
                partner_id,
                status=query.status,
                since=query.since,
                until=query.until,
                cursor=query.cursor,
                limit=query.limit,
            )
        except BadCursor as exc:
            raise InvalidInput(str(exc), part="") from None
        return answer(DeliveryPage, {"deliveries": page, "nextCursor": cursor})

    def of_event(self, event_id: str) -> dict[str, Any]:
        found = {
            "eventId": event_id,
            "event": self.event(event_id),
            "deliveries": self.log.by_event(event_id),
        }
        return answer(EventDeliveries, found)

    def event(self, event_id: str) -> dict[str, Any] | None:
        """The stored event (type, when accepted, data) or None: kept as long as the log."""
        found = self.events.get(event_id) if self.events else None
        return found.model_dump() if found else None
