"""The delivery log: every attempt, by partner or endpoint (paged) or by event."""

from __future__ import annotations

from typing import Any

from ..endpoints.store import EndpointStore
from ..errors import InvalidInput
from ..store.delivery_log import BadCursor, DeliveryLog
from ..store.event_store import EventStore
from .answers import DeliveryPage, EventDeliveries, answer
from .schemas import DeliveryQuery


class DeliveryLogService:
    def __init__(
        self, log: DeliveryLog, events: EventStore | None = None, endpoints: EndpointStore | None = None
    ) -> None:
        self.log = log
        self.events = events
        self.endpoints = endpoints

    def own(self, partner_id: str, query: DeliveryQuery) -> dict[str, Any]:
        """The partner's own page: an ``endpointId`` that is not one of its endpoints is a 404
        (EndpointNotFound), as on its endpoint routes. The operator's pages do not check: a
        deleted endpoint's attempts stay readable until the log expires them."""
        if query.endpointId is not None and self.endpoints is not None:
            self.endpoints.get(partner_id, query.endpointId)
        return self.of_partner(partner_id, query)

    def of_partner(self, partner_id: str | None, query: DeliveryQuery) -> dict[str, Any]:
        """A page of a partner's attempts (every partner's with None; one endpoint's with
        ``endpointId``), newest first, and the cursor of the next page."""
        if query.eventId:
            found = self.log.by_event(query.eventId, partner_id, query.endpointId)
            return answer(DeliveryPage, {"deliveries": found, "nextCursor": None})
        try:
            page, cursor = self.log.by_partner(
                partner_id,
                status=query.status,
                endpoint_id=query.endpointId,
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
