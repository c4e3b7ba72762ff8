"""The service layer: typed inputs (``schemas``), typed domain errors (``webhooks.errors``),
one service per area. The HTTP API and the CLI both call these; neither holds logic of its own.

- ``schemas``: request bodies and queries as pydantic models
- ``answers``: the JSON answers as pydantic models (the OpenAPI schemas, checked before sending)
- ``partners``: partners, their subscriptions and signing secrets
- ``endpoints``: a partner's endpoints (URL, events, filter, secret, schedule, health)
- ``event_types``: the event type catalog
- ``deliveries``: the delivery log, by partner (paged) or by event
- ``recovery``: sending again (one event, failures since a time, a test event, parked deliveries)
- ``stats``: the console's overview (delivery counts, latency, endpoint health)
- ``portal``: portal tokens (a partner's short-lived console link) and checking them
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.database import Database

from ..config import Settings
from ..delivery.parked import ParkedDeliveries
from ..endpoints.store import EndpointStore
from ..errors import Unavailable
from ..ingest.catalog import EventTypeCatalog
from ..ingest.enqueue import Ingestor
from ..ingest.events_api import EventsApi
from ..ingest.idempotency import IdempotencyStore
from ..partners.credentials import AdminCredential, PartnerCredential
from ..partners.portal_tokens import PortalTokens
from ..partners.store import PartnerStore
from ..partners.throttle import FailureThrottle
from ..queues import SqsQueue
from ..store.delivery_log import DeliveryLog
from ..store.event_store import EventStore
from .deliveries import DeliveryLogService
from .endpoints import EndpointService
from .event_types import EventTypeService
from .partners import PartnerService
from .portal import PortalService, portal_token_failures
from .recovery import RecoveryService
from .stats import StatsService


@dataclass(frozen=True)
class Services:
    settings: Settings
    store: PartnerStore
    admin: AdminCredential
    partner_keys: PartnerCredential
    partners: PartnerService
    endpoints: EndpointService
    event_types: EventTypeService
    deliveries: DeliveryLogService
    recovery: RecoveryService
    stats: StatsService
    portal: PortalService
    ingest: EventsApi | None  # None where no events queue is configured (the CLI)

    @property
    def events(self) -> EventsApi:
        if self.ingest is None:
            raise Unavailable("The events API is not available here (no EVENTS_QUEUE_URL)")
        return self.ingest


def build_services(
    settings: Settings, db: Database[Any], sqs: Any, cache_ttl: float | None = None
) -> Services:
    """Every service over one database and one SQS client; ``cache_ttl`` overrides the
    settings' partner/catalog cache (the CLI reads fresh)."""
    ttl = settings.cache_ttl_seconds if cache_ttl is None else cache_ttl
    store = PartnerStore(db, ttl)
    catalog = EventTypeCatalog(db, ttl)
    parked = ParkedDeliveries(db, settings.delivery_log_ttl_days)
    log = DeliveryLog(db, settings.delivery_log_ttl_days)
    partner_keys = PartnerCredential(store, FailureThrottle(db, "apiKey", settings.partner_auth_max_failures))
    events = EventStore(db, settings.delivery_log_ttl_days)
    delivery_queue = SqsQueue(sqs, settings.delivery_queue_url) if settings.delivery_queue_url else None
    # operational events (endpoint.enabled, endpoint.secret.rotated) go where producers' do
    events_queue = SqsQueue(sqs, str(settings.events_queue_url)) if settings.events_queue_url else None
    portal_tokens = PortalTokens(db)
    partners = PartnerService(settings, store, parked, log, events_queue, portal_tokens)
    endpoints = EndpointStore(db, store)
    ingest = None
    if events_queue is not None:
        ingest = EventsApi(
            settings,
            partner_keys,
            Ingestor(events_queue, settings.max_message_bytes),
            IdempotencyStore(db, timedelta(hours=settings.idempotency_ttl_hours)),
            catalog,
        )
    return Services(
        settings=settings,
        store=store,
        admin=AdminCredential(settings, db),
        partner_keys=partner_keys,
        partners=partners,
        endpoints=EndpointService(settings, endpoints, parked, events_queue),
        event_types=EventTypeService(catalog),
        deliveries=DeliveryLogService(log, events, endpoints),
        recovery=RecoveryService(
            settings,
            store,
            partners,
            log,
            events,
            delivery_queue,
            parked,
            endpoints,
            events_queue,
        ),
        stats=StatsService(log.stats, store, parked, endpoints),
        portal=PortalService(
            store, portal_tokens, portal_token_failures(db, settings.portal_token_max_failures)
        ),
        ingest=ingest,
    )
