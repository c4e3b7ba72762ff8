"""Sending deliveries again: one event, everything failed since a time, a test event, and
what was parked while an endpoint was disabled. All of it goes through the normal delivery
path: a delivery message on the delivery queue, one per (event, endpoint).

The partner-level operations (the operator's routes and CLI from before endpoints existed)
keep their meaning for a partner with one endpoint: ``send_test`` and ``enable_endpoint``
act on the first endpoint (the partner's own ``webhookUrl``); ``replay`` sends the event to
each of the partner's endpoints subscribed to its type (forced: the first endpoint when none
is); ``recover`` sends each failed delivery to the endpoint it failed at. The per-endpoint
operations (``*_endpoint`` below) act on one endpoint only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..config import Settings
from ..delivery.operational_events import ENDPOINT_ENABLED_EVENT, publish_operational
from ..delivery.parked import ParkedDeliveries
from ..endpoints.model import Endpoint, first_endpoint_id
from ..endpoints.store import EndpointStore
from ..errors import Conflict, NotFound, Unavailable
from ..models import DeliveryMessage, Event, new_event_id, utc_timestamp
from ..observability import logger
from ..partners.model import Partner
from ..partners.store import PartnerStore
from ..partners.subscriptions import recipients, subscription_matches
from ..queues import OutgoingMessage, Queue, send_all
from ..store.delivery_log import DeliveryLog
from ..store.event_store import EventStore
from .answers import EnabledEndpoint, EndpointEnabled, answer
from .answers import Enqueued as EnqueuedAnswer
from .partners import PartnerService

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

    def add(self, other: Sent) -> None:
        self.enqueued += other.enqueued
        self.failed += other.failed


@dataclass
class Enqueued(Sent):
    partner_id: str = ""
    endpoint_id: str | None = None  # the per-endpoint operations say which one
    missing: list[str] | None = None  # recover: failed events no longer stored
    remaining: int | None = None  # recover: failed deliveries left for the next call

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"partnerId": self.partner_id}
        if self.endpoint_id is not None:
            body["endpointId"] = self.endpoint_id
        body.update(enqueued=self.enqueued, failed=self.failed)
        if self.missing is not None:
            body["missing"] = self.missing
        if self.remaining is not None:
            body["remaining"] = self.remaining
        return answer(EnqueuedAnswer, body)


@dataclass
class Enabled(Sent):
    """An endpoint enabled, and its parked deliveries sent: ``view`` is what the answer shows
    of it (the partner for the partner-level route, the endpoint for the per-endpoint ones)."""

    view: dict[str, Any] = field(default_factory=dict)
    remaining_parked: int = 0
    model: type[Any] = EndpointEnabled

    def body(self) -> dict[str, Any]:
        body = {**self.view, "replayed": len(self.enqueued), "remainingParked": self.remaining_parked}
        if self.failed:
            body["error"] = "the delivery queue refused some parked deliveries"
        return answer(self.model, body)


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
        endpoints: EndpointStore,
        events_queue: Queue | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.partners = partners
        self.log = log
        self.events = events
        self.delivery_queue = delivery_queue
        self.parked = parked
        self.endpoints = endpoints
        self.events_queue = events_queue  # operational events (endpoint.enabled)

    # --- the partner-level operations --------------------------------------------

    def replay(self, partner_id: str, event_id: str, *, force: bool = False) -> Enqueued:
        """Send one stored event again to each of the partner's endpoints it is owed to (subscribed
        to its type; a platform event only to the partner it is about), or, with ``force``, to
        the first endpoint when none is: one mistyped partner id must not hand one tenant's
        event to another."""
        partner = self._active(partner_id)
        event = self._stored(event_id)
        targets = [e for e in self.endpoints.of_partner(partner.id) if owed(e, event)]
        if not targets and not force:
            raise Conflict(
                f"Partner {partner.id} is not subscribed to {event.eventType!r}, the type of event "
                f"{event_id}: check the partner id, or send force: true to replay it anyway"
            )
        if not targets:
            logger.warning(
                "forced replay",
                extra={"partner_id": partner.id, "event_id": event_id, "event_type": event.eventType},
            )
            targets = [self.endpoints.get(partner.id, first_endpoint_id(partner.id))]
        result = Enqueued(partner_id=partner.id)
        for endpoint in targets:
            result.add(self._enqueue(partner, endpoint, [event], "replay"))
        result.enqueued = _unique(e for e in result.enqueued if e not in result.failed)
        result.failed = _unique(result.failed)
        return result

    def recover(self, partner_id: str, since: datetime) -> Enqueued:
        """Send again what failed since ``since``, each to the endpoint it failed at: bounded
        per call (in total), one query for the events."""
        partner = self._active(partner_id)
        result = Enqueued(partner_id=partner.id, missing=[], remaining=0)
        budget = RECOVER_PER_REQUEST
        for endpoint in self.endpoints.of_partner(partner.id):
            one = self._recover(partner, endpoint, since, budget)
            result.add(one)
            result.missing = sorted({*(result.missing or []), *(one.missing or [])})
            result.remaining = (result.remaining or 0) + (one.remaining or 0)
            budget -= len(one.enqueued) + len(one.failed) + len(one.missing or [])
        return result

    def send_test(self, partner_id: str) -> Enqueued:
        """A ``webhook.test`` event to the partner's first endpoint."""
        return self.test_endpoint(partner_id, first_endpoint_id(partner_id), with_id=False)

    def enable_endpoint(self, partner_id: str) -> Enabled:
        """Enable the first endpoint if disabled and send it what was parked meanwhile, oldest
        first (the answer shows the partner)."""
        enabled = self.enable(partner_id, first_endpoint_id(partner_id))
        enabled.view = self.partners.view(self.store.get(partner_id))
        enabled.model = EndpointEnabled
        return enabled

    # --- one endpoint ------------------------------------------------------------

    def replay_to_endpoint(self, partner_id: str, endpoint_id: str, event_id: str) -> Enqueued:
        """The partner's own replay: one of its events to one of its endpoints. An event that
        is not the partner's (its delivery log has no attempt of it to the partner) is not
        found; one the partner has, but this endpoint is not subscribed to, is a conflict."""
        partner = self._active(partner_id)
        endpoint = self.endpoints.get(partner.id, endpoint_id)
        event = self.events.get(event_id)
        if event is None or not self._partner_has(partner, event):
            days = self.settings.delivery_log_ttl_days
            if not self.settings.delivery_log_enabled:
                raise NotFound(f"No event {event_id} of yours (the delivery log, which shows yours, is off)")
            raise NotFound(f"No event {event_id} of yours (events are kept {days:g} days)")
        if not owed(endpoint, event):
            raise Conflict(
                f"Endpoint {endpoint.id} is not subscribed to {event.eventType!r}, the type of event "
                f"{event_id}: add the type to its events first"
            )
        return self._enqueue(partner, endpoint, [event], "replay")

    def operator_replay_to_endpoint(
        self, partner_id: str, endpoint_id: str, event_id: str, *, force: bool = False
    ) -> Enqueued:
        """The operator's replay to one endpoint: any stored event the endpoint is owed (subscribed
        to its type; a platform event only about its own partner), or, with ``force``, any: the
        partner-level replay's rule, not the partner's own (which needs its delivery log)."""
        partner = self._active(partner_id)
        endpoint = self.endpoints.get(partner.id, endpoint_id)
        event = self._stored(event_id)
        if not owed(endpoint, event):
            if not force:
                raise Conflict(
                    f"Endpoint {endpoint.id} is not subscribed to {event.eventType!r}, the type of event "
                    f"{event_id}: check the ids, or force it"
                )
            logger.warning(
                "forced replay",
                extra={"partner_id": partner.id, "endpoint_id": endpoint.id, "event_id": event_id},
            )
        return self._enqueue(partner, endpoint, [event], "replay")

    def recover_endpoint(self, partner_id: str, endpoint_id: str, since: datetime) -> Enqueued:
        """Send again what failed at this endpoint since ``since`` (bounded per call)."""
        partner = self._active(partner_id)
        endpoint = self.endpoints.get(partner.id, endpoint_id)
        return self._recover(partner, endpoint, since, RECOVER_PER_REQUEST)

    def test_endpoint(self, partner_id: str, endpoint_id: str, *, with_id: bool = True) -> Enqueued:
        """A ``webhook.test`` event to one endpoint, now (stored, so it can be replayed)."""
        partner = self._active(partner_id)
        endpoint = self.endpoints.get(partner.id, endpoint_id)
        data: dict[str, Any] = {"message": "This is a test webhook", "partnerId": partner.id}
        if with_id:
            data["endpointId"] = endpoint.id
        event = Event(eventId=new_event_id(), eventType=TEST_EVENT_TYPE, timestamp=utc_timestamp(), data=data)
        self.events.save([event])
        return self._enqueue(partner, endpoint, [event], "test")

    def enable(self, partner_id: str, endpoint_id: str) -> Enabled:
        """Enable the endpoint and send it what was parked meanwhile, oldest first (up to
        PARKED_PER_REQUEST; ``remaining_parked`` says if more are left); ``endpoint.enabled``
        is published when it was disabled."""
        if self.parked is None or self.delivery_queue is None:
            raise Unavailable("Enabling endpoints is not available here (no DELIVERY_QUEUE_URL)")
        parked, queue = self.parked, self.delivery_queue
        was_disabled = self.endpoints.get(partner_id, endpoint_id).endpoint_disabled
        # enabled before the parked deliveries are read: a deliverer parking one right now
        # re-reads the endpoint after parking and delivers it itself
        endpoint = self.endpoints.enable(partner_id, endpoint_id)
        sent = Sent()
        while len(sent.enqueued) < PARKED_PER_REQUEST and not sent.failed:
            page = list(parked.oldest(endpoint.partner_id, endpoint.id, PARKED_PAGE))
            if not page:
                break
            batch = send_deliveries(queue, endpoint, [m.event for _, m in page], "parked")
            done = set(batch.enqueued)
            parked.remove([key for key, m in page if m.event.eventId in done])
            sent.add(batch)
        logger.info(
            "endpoint enabled",
            extra={
                "partner_id": endpoint.partner_id,
                "endpoint_id": endpoint.id,
                "replayed": len(sent.enqueued),
            },
        )
        if was_disabled:
            publish_operational(
                ENDPOINT_ENABLED_EVENT,
                {"partnerId": endpoint.partner_id, "endpointId": endpoint.id, "replayed": len(sent.enqueued)},
                self.events_queue,
            )
        remaining = parked.count(endpoint.partner_id, endpoint.id)
        view = {**endpoint.public(parked=remaining)}
        return Enabled(
            sent.enqueued, sent.failed, view=view, remaining_parked=remaining, model=EnabledEndpoint
        )

    # --- shared --------------------------------------------------------------------

    def _recover(self, partner: Partner, endpoint: Endpoint, since: datetime, budget: int) -> Enqueued:
        failed = self.log.failed_since(partner.id, since, endpoint.id)
        ids = failed[: max(budget, 0)]
        found = self.events.get_many(ids) if ids else []
        result = self._enqueue(partner, endpoint, found, "recover")
        result.missing = sorted(set(ids) - {e.eventId for e in found})
        result.remaining = len(failed) - len(ids)
        return result

    def _partner_has(self, partner: Partner, event: Event) -> bool:
        """Whether the event is the partner's: its delivery log shows it was sent to the
        partner, or it is parked for one of the partner's endpoints (owed, never attempted).
        A matching type is not enough: any stored event of that type (from before it
        subscribed, or one its filter excluded) would be the partner's to fetch. With the
        delivery log off (DELIVERY_LOG_ENABLED=false) only parked events are; the operator's
        replay is not limited by this."""
        if self.log.by_event(event.eventId, partner.id):
            return True
        return self.parked is not None and self.parked.holds(partner.id, event.eventId)

    def _stored(self, event_id: str) -> Event:
        event = self.events.get(event_id)
        if event is None:
            days = self.settings.delivery_log_ttl_days
            raise NotFound(f"Event {event_id} not found (events are kept {days:g} days)")
        return event

    def _active(self, partner_id: str) -> Partner:
        partner = self.store.get(partner_id)
        if not partner.is_active:
            raise Conflict("Partner is inactive: activate it first")
        return partner

    def _enqueue(self, partner: Partner, endpoint: Endpoint, events: list[Event], reason: str) -> Enqueued:
        if self.delivery_queue is None:
            raise Unavailable("Replay is not available here (no DELIVERY_QUEUE_URL)")
        sent = send_deliveries(self.delivery_queue, endpoint, events, reason)
        logger.info(
            "deliveries enqueued by an operator",
            extra={
                "reason": reason,
                "partner_id": partner.id,
                "endpoint_id": endpoint.id,
                "count": len(sent.enqueued),
            },
        )
        return Enqueued(sent.enqueued, sent.failed, partner_id=partner.id, endpoint_id=endpoint.id)


def owed(endpoint: Endpoint, event: Event) -> bool:
    """Whether dispatch would send the event to the endpoint by its type: one of its patterns
    matches, and a platform event (``endpoint.*``, ``webhook.*``) is about its partner. The
    endpoint's filter is not applied: a replay or recover is asked for by name."""
    return any(subscription_matches(p, event.eventType) for p in endpoint.events) and bool(
        recipients(event.eventType, event.data, [endpoint.partner_id])
    )


def _unique(ids: Any) -> list[str]:
    return list(dict.fromkeys(ids))


def send_deliveries(queue: Queue, endpoint: Endpoint, events: Sequence[Event], reason: str) -> Sent:
    """Delivery messages of ``events`` to one endpoint on the delivery queue (refused entries
    are retried); the first endpoint's carry no endpointId, as before endpoints existed."""
    other = None if endpoint.first else endpoint.id
    deliveries = [DeliveryMessage(partnerId=endpoint.partner_id, endpointId=other, event=e) for e in events]
    messages = [
        OutgoingMessage(str(n), d.as_body(), {**d.attributes(), "reason": reason})
        for n, d in enumerate(deliveries)
    ]
    unsent = send_all(queue, messages).unsent
    return Sent(
        [e.eventId for n, e in enumerate(events) if str(n) not in unsent],
        [e.eventId for n, e in enumerate(events) if str(n) in unsent],
    )
