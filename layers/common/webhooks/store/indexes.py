"""Every collection and index the service relies on, made in one call before anything
serves: by ``webhooks migrate`` (on AWS, once per database) and by ``webhooks local`` at
start.

Each store also makes its indexes on first use. Making them up front matters twice:
the TTL indexes take their lifetimes from the same settings the functions use (an index
made with another lifetime would refuse the functions' own, and every log write after
it); and no collection is created while writes run. SecantusDB, the local server, can
deadlock when a collection is created while other connections update (seen as the whole
server hanging at the first delivery-log write of a fresh database).
"""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from ..delivery.parked import ParkedDeliveries
from ..delivery.rate_limit import RateLimiter
from ..endpoints.store import EndpointStore
from ..ingest.catalog import EventTypeCatalog
from ..ingest.idempotency import IdempotencyStore
from ..partners.portal_tokens import PortalTokens
from ..partners.store import PartnerStore
from ..partners.throttle import FailureThrottle
from .delivery_log import DeliveryLog
from .event_store import EventStore

# collections written without an index of their own, created here so that no write creates one
PLAIN_COLLECTIONS = ("revisions",)


def ensure_indexes(db: Database[Any], delivery_log_ttl_days: float = 30) -> list[str]:
    """Make them (a no-op for what exists); returns what was ensured, for reports."""
    partners = PartnerStore(db)
    partners.ensure_indexes()
    IdempotencyStore(db).ensure_indexes()
    DeliveryLog(db, delivery_log_ttl_days).ensure_indexes()
    EventStore(db, delivery_log_ttl_days).ensure_indexes()
    ParkedDeliveries(db, delivery_log_ttl_days).ensure_indexes()
    EndpointStore(db, partners).ensure_indexes()
    RateLimiter(db).ensure_indexes()
    FailureThrottle(db, "any").ensure_indexes()
    PortalTokens(db).ensure_indexes()
    existing = set(db.list_collection_names())
    for name in (*PLAIN_COLLECTIONS, EventTypeCatalog.COLLECTION):
        if name not in existing:
            db.create_collection(name)
    return [
        "partners.apiKeyHash (unique), previousApiKeys.apiKeyHash",
        "partners.name",
        "subscriptions.eventType+isActive",
        "idempotencyKeys (TTL)",
        "deliveryAttempts (TTL, by partner, by event)",
        "deliveryStats (TTL, by start)",
        "events (TTL)",
        "parkedDeliveries (TTL, by partner)",
        "endpoints (by partner), subscriptions.endpointId",
        "rateLimits (TTL)",
        "authFailures (TTL)",
        "portalTokens.tokenHash (unique), expiresAt (TTL), partnerId",
        f"collections {', '.join((*PLAIN_COLLECTIONS, EventTypeCatalog.COLLECTION))}",
    ]
