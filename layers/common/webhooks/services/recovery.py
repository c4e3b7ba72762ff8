"""Sending deliveries again: one event, everything failed since a time, a test event, and
what was parked while an endpoint was disabled. All of it goes through the normal delivery
path: a delivery message on the delivery queue."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..config import Settings
from ..delivery.parked import ParkedDeliveries
from ..errors import Conflict, NotFound, Unavailable
from ..models import DeliveryMessage, Event, new_event_id, utc_timestamp
from ..observability import logger
from ..partners.model import Partner
from ..partners.store import PartnerStore
from ..partners.subscriptions import subscription_matches
from ..queues import OutgoingMessage, Queue, send_all
from ..store.delivery_log import DeliveryLog
from ..store.event_store import EventStore
from .answers import EndpointEnabled, answer
from .answers import Enqueued as EnqueuedAnswer
from .partners import PartnerService, PartnerView

TEST_EVENT_TYPE = "webhook.test"
PARKED_PAGE = 500
PARKED_PER_REQUEST = 5_000
RECOVER_PER_REQUEST = 1_000  # one request stays well inside API Gateway's 29 s; call again for more

Outcome = Literal["all", "some", "none"]


@dataclass
class Sent:
    """Which events' delivery messages the delivery queue took, and which it refused."""

    enqueued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @property
    def outcome(self) -> Outcome:
        return "all" if not self.failed else ("some" if self.enqueued else "none")


@dataclass
class Enqueued(Sent):
    partner_id: str = ""
    missing: list[str] | None = None  # recover: failed events no longer stored
    remaining: int | None = None  # recover: failed deliveries left for the next call

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "partnerId": self.partner_id,
            "enqueued": self.enqueued,
            "failed": self.failed,
        }
        if self.missing is not None:
            body["missing"] = self.missing
        if self.remaining is not None:
            body["remaining"] = self.remaining
        return answer(EnqueuedAnswer, body)


@dataclass
class Enabled(Sent):
    partner: PartnerView = field(default_factory=dict)
    remaining_parked: int = 0

    def body(self) -> dict[str, Any]:
        body = {**self.partner, "replayed": len(self.enqueued), "remainingParked": self.remaining_parked}
        if self.failed:
            body["error"] = "the delivery queue refused some parked deliveries"
        return answer(EndpointEnabled, body)


class RecoveryService:
    def __init__(
        self,
        settings: Settings,
        store: PartnerStore,
        partners: PartnerService,
        log: DeliveryLog,
        events: EventStore,
        delivery_queue: Queue | None,
        parked: ParkedDeliveries | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.partners = partners
        self.log = log
        self.events = events
        self.delivery_queue = delivery_queue
        self.parked = parked

    def replay(self, partner_id: str, event_id: str, *, force: bool = False) -> Enqueued:
        """Send one stored event again, only to a partner subscribed to its type unless
        ``force``: one mistyped partner id must not hand one tenant's event to another."""
        partner = self._active(partner_id)
        event = self.events.get(event_id)
        if event is None:
            days = self.settings.delivery_log_ttl_days
            raise NotFound(f"Event {event_id} not found (events are kept {days:g} days)")
        if not force and not any(
            subscription_matches(pattern, event.eventType)
            for pattern in self.store.subscriptions_of(partner.id)
        ):
            raise Conflict(
                f"Partner {partner.id} is not subscribed to {event.eventType!r}, the type of event "
                f"{event_id}: check the partner id, or send force: true to replay it anyway"
            )
        if force:
            logger.warning(
                "forced replay",
                extra={"partner_id": partner.id, "event_id": event_id, "event_type": event.eventType},
            )
        return self._enqueue(partner, [event], "replay")

    def recover(self, partner_id: str, since: datetime) -> Enqueued:
        """Send again what failed since ``since``: bounded per call, one query for the events."""
        partner = self._active(partner_id)
        failed = self.log.failed_since(partner.id, since)
        ids = failed[:RECOVER_PER_REQUEST]
        found = self.events.get_many(ids)
        result = self._enqueue(partner, found, "recover")
        result.missing = sorted(set(ids) - {e.eventId for e in found})
        result.remaining = len(failed) - len(ids)
        return result

    def send_test(self, partner_id: str) -> Enqueued:
        partner = self._active(partner_id)
        event = Event(
            eventId=new_event_id(),
            eventType=TEST_EVENT_TYPE,
            timestamp=utc_timestamp(),
            data={"message": "This is a test webhook", "partnerId": partner.id},
        )
        self.events.save([event])
        return self._enqueue(partner, [event], "test")

    def enable_endpoint(self, partner_id: str) -> Enabled:
        """Enable a disabled endpoint and send it what was parked meanwhile, oldest first."""
        if self.parked is None or self.delivery_queue is None:
            raise Unavailable("Enabling endpoints is not available here (no DELIVERY_QUEUE_URL)")
        parked, queue = self.parked, self.delivery_queue
        # enabled before the parked deliveries are read: a deliverer parking one right now
        # re-reads the partner after parking and delivers it itself
        partner = self.store.enable_endpoint(partner_id)
        sent = Sent()
        while len(sent.enqueued) < PARKED_PER_REQUEST and not sent.failed:
            page = list(parked.oldest(partner.id, PARKED_PAGE))
            if not page:
                break
            batch = send_deliveries(queue, partner, [m.event for _, m in page], "parked")
            done = set(batch.enqueued)
            parked.remove([key for key, m in page if m.event.eventId in done])
            sent.enqueued += batch.enqueued
            sent.failed += batch.failed
        logger.info("endpoint enabled", extra={"partner_id": partner.id, "replayed": len(sent.enqueued)})
        return Enabled(
            sent.enqueued,
            sent.failed,
            partner=self.partners.view(partner),
            remaining_parked=parked.count(partner.id),
        )

    def _active(self, partner_id: str) -> Partner:
        partner = self.store.get(partner_id)
        if not partner.is_active:
            raise Conflict("Partner is inactive: activate it first")
        return partner

    def _enqueue(self, partner: Partner, events: list[Event], reason: str) -> Enqueued:
        if self.delivery_queue is None:
            raise Unavailable("Replay is not available here (no DELIVERY_QUEUE_URL)")
        sent = send_deliveries(self.delivery_queue, partner, events, reason)
        logger.info(
            "deliveries enqueued by an operator",
            extra={"reason": reason, "partner_id": partner.id, "count": len(sent.enqueued)},
        )
        return Enqueued(sent.enqueued, sent.failed, partner_id=partner.id)


def send_deliveries(queue: Queue, partner: Partner, events: Sequence[Event], reason: str) -> Sent:
    """Delivery messages for ``events`` to the delivery queue (refused entries are retried)."""
    deliveries = [DeliveryMessage(partnerId=partner.id, event=e) for e in events]
    messages = [
        OutgoingMessage(str(n), d.as_body(), {**d.attributes(), "reason": reason})
        for n, d in enumerate(deliveries)
    ]
    unsent = send_all(queue, messages).unsent
    return Sent(
        [e.eventId for n, e in enumerate(events) if str(n) not in unsent],
        [e.eventId for n, e in enumerate(events) if str(n) in unsent],
    )
