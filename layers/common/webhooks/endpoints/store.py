"""The endpoint store: a partner's endpoints in MongoDB.

The first endpoint lives in the partner document (``webhookUrl``, ``secretKey``, ...; its
filter, schedule and description as ``endpointFilter``, ``retrySchedule``,
``endpointDescription``), every other one in ``endpoints``; subscriptions are rows of
``subscriptions``, with an ``endpointId`` unless they are the first endpoint's. What both
kinds share has the same field name, so each write here is one update on the endpoint's
"home" (:meth:`EndpointStore._home`). Every write that changes who receives what, or how,
raises the partners' revision (:meth:`PartnerCache.changed`), as partner writes do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.collection import Collection
from pymongo.database import Database

from ..delivery.signing import generate_secret
from ..errors import Conflict
from ..observability import logger
from ..partners.model import Partner, PartnerNotFound, _to_partner
from ..partners.store import PartnerStore, _id_match, _one_id
from .model import (
    DOCUMENT_FIELDS,
    Endpoint,
    EndpointNotFound,
    first_endpoint,
    first_endpoint_id,
    new_endpoint_id,
    other_endpoint,
)

MAX_ENDPOINTS_PER_PARTNER = 50
PARKED_COLLECTION = "parkedDeliveries"  # webhooks.delivery.parked.ParkedDeliveries


class EndpointStore:
    def __init__(
        self,
        db: Database[Any],
        partners: PartnerStore,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.endpoints = db["endpoints"]
        self.subscriptions = db["subscriptions"]
        # delivery.parked's collection, written here only to clear a deleted endpoint's
        # (importing delivery.parked would make endpoints depend on delivery)
        self.parked = db[PARKED_COLLECTION]
        self.partner_store = partners
        self._clock = clock

    def ensure_indexes(self) -> None:
        self.endpoints.create_index([("partnerId", ASCENDING), ("createdAt", ASCENDING)])
        self.subscriptions.create_index([("endpointId", ASCENDING)], sparse=True)

    # --- reads ------------------------------------------------------------------

    def of_partner(self, partner_id: str) -> list[Endpoint]:
        """Every endpoint of the partner, the first one first, each with its event types."""
        doc, partner = self._partner(partner_id)
        events = self._events_by_endpoint(partner_id)
        found = [first_endpoint(doc, partner, events.get(None, ()))]
        for other in self.endpoints.find({"partnerId": _id_match(partner_id)}).sort("createdAt", ASCENDING):
            found.append(other_endpoint(other, partner, events.get(str(other["_id"]), ())))
        return found

    def get(self, partner_id: str, endpoint_id: str) -> Endpoint:
        """One endpoint of the partner with its event types; EndpointNotFound if it is another
        partner's or does not exist."""
        found = self._read(partner_id, endpoint_id, with_events=True)
        if found is None:
            raise EndpointNotFound(endpoint_id)
        return found

    def get_cached(self, partner_id: str, endpoint_id: str | None) -> Endpoint | None:
        """The endpoint (``None``: the first) as deliveries need it (no event types), or None
        if it or its partner is gone; cached briefly with the partner's caches."""
        endpoint_id = endpoint_id or first_endpoint_id(partner_id)
        return self.partner_store.cached_endpoint(
            partner_id, endpoint_id, lambda: self._load(partner_id, endpoint_id)
        )

    def _load(self, partner_id: str, endpoint_id: str) -> Endpoint | None:
        try:
            return self._read(partner_id, endpoint_id, with_events=False)
        except PartnerNotFound:
            return None

    def _read(self, partner_id: str, endpoint_id: str, *, with_events: bool) -> Endpoint | None:
        """The endpoint, or None if the partner has none of that id; PartnerNotFound."""
        doc, partner = self._partner(partner_id)
        first = endpoint_id == first_endpoint_id(partner.id)
        if not first:
            found = self.endpoints.find_one({"_id": endpoint_id, "partnerId": _id_match(partner_id)})
            if found is None:
                return None
            doc = found
        events = tuple(self._events(partner_id, None if first else endpoint_id)) if with_events else ()
        return first_endpoint(doc, partner, events) if first else other_endpoint(doc, partner, events)

    def others_of(self, partners: Iterable[Partner]) -> dict[str, list[Endpoint]]:
        """Every endpoint but the first of each of ``partners`` (no event types), by partner
        id, oldest first: one query for them all."""
        by_id = {p.id: p for p in partners}
        found: dict[str, list[Endpoint]] = {}
        if not by_id:
            return found
        ids = [_one_id(pid) for pid in by_id] + list(by_id)  # either spelling of a partnerId
        for doc in self.endpoints.find({"partnerId": {"$in": ids}}).sort("createdAt", ASCENDING):
            partner = by_id.get(str(doc.get("partnerId")))
            if partner is not None:
                found.setdefault(partner.id, []).append(other_endpoint(doc, partner))
        return found

    def _partner(self, partner_id: str) -> tuple[dict[str, Any], Partner]:
        doc = self.partner_store.partners.find_one({"_id": _id_match(partner_id)})
        if doc is None:
            raise PartnerNotFound(partner_id)
        return doc, _to_partner(doc)

    def _events(self, partner_id: str, endpoint_id: str | None) -> list[str]:
        rows = self.subscriptions.find(
            {"partnerId": _id_match(partner_id), "endpointId": endpoint_id, "isActive": True},
            {"eventType": 1},
        )
        return sorted(r["eventType"] for r in rows)

    def _events_by_endpoint(self, partner_id: str) -> dict[str | None, tuple[str, ...]]:
        found: dict[str | None, list[str]] = {}
        rows = self.subscriptions.find(
            {"partnerId": _id_match(partner_id), "isActive": True}, {"eventType": 1, "endpointId": 1}
        )
        for row in rows:
            found.setdefault(row.get("endpointId"), []).append(row["eventType"])
        return {k: tuple(sorted(v)) for k, v in found.items()}

    # --- writes -----------------------------------------------------------------

    def create(
        self, partner_id: str, settings: Mapping[str, Any], events: Iterable[str]
    ) -> tuple[Endpoint, str]:
        """A new endpoint with its own secret (returned: shown once). ``settings`` in API
        names (see DOCUMENT_FIELDS); None values are left out."""
        _, partner = self._partner(partner_id)
        if (
            self.endpoints.count_documents({"partnerId": _id_match(partner_id)}) + 1
            >= MAX_ENDPOINTS_PER_PARTNER
        ):
            raise Conflict(f"A partner has at most {MAX_ENDPOINTS_PER_PARTNER} endpoints")
        secret = generate_secret()
        now = self._clock()
        doc: dict[str, Any] = {
            "_id": new_endpoint_id(),
            "partnerId": _one_id(partner.id),
            "secretKey": secret,
            "previousSecrets": [],
            "createdAt": now,
            "updatedAt": now,
        }
        for name, value in settings.items():
            if value is not None:
                doc[DOCUMENT_FIELDS[name][1]] = value
        self.endpoints.insert_one(doc)
        try:
            self.set_events(partner.id, doc["_id"], list(events))
        except Exception:
            self.endpoints.delete_one({"_id": doc["_id"]})  # its secret was never shown
            raise
        return self.get(partner.id, doc["_id"]), secret

    def update(
        self, partner_id: str, endpoint_id: str, changes: Mapping[str, Any], events: list[str] | None = None
    ) -> Endpoint:
        """Set the ``changes`` (API names; a None value removes the setting) and, when given,
        replace the endpoint's event types."""
        endpoint = self.get(partner_id, endpoint_id)
        column = 0 if endpoint.first else 1
        update: dict[str, Any] = {"$set": {"updatedAt": self._clock()}}
        for name, value in changes.items():
            field = DOCUMENT_FIELDS[name][column]
            if value is None:
                update.setdefault("$unset", {})[field] = ""
            else:
                update["$set"][field] = value
        collection, match = self._home(endpoint)
        collection.update_one(match, update)
        if events is not None:
            self.set_events(endpoint.partner_id, None if endpoint.first else endpoint.id, events)
        self.partner_store.changed()
        return self.get(partner_id, endpoint_id)

    def set_events(self, partner_id: str, endpoint_id: str | None, events: list[str]) -> None:
        """Make the endpoint's event types exactly ``events``."""
        match, oid = _id_match(partner_id), _one_id(partner_id)
        wanted = list(dict.fromkeys(events))
        self.subscriptions.delete_many(
            {"partnerId": match, "endpointId": endpoint_id, "eventType": {"$nin": wanted}}
        )
        for event_type in wanted:
            update: dict[str, Any] = {"$set": {"isActive": True}, "$setOnInsert": {"partnerId": oid}}
            if endpoint_id is None:
                # the filter's endpointId: None also matches a first endpoint's row without the
                # field (the Node service's shape); an upsert would copy it in as null, so it
                # is unset: an inserted row keeps that shape too
                update["$unset"] = {"endpointId": ""}
            self.subscriptions.update_one(
                {"partnerId": match, "endpointId": endpoint_id, "eventType": event_type},
                update,
                upsert=True,
            )
        self.partner_store.changed()

    def delete(self, partner_id: str, endpoint_id: str) -> None:
        endpoint = self.get(partner_id, endpoint_id)
        if endpoint.first:
            raise Conflict(
                "The first endpoint is the partner's own webhookUrl: change it, or delete the partner"
            )
        # its parked deliveries could never be sent (enable needs the endpoint): not kept to
        # their TTL. The filter ParkedDeliveries uses for another endpoint's documents. First,
        # so that a failure here leaves the endpoint in place and the delete can be repeated.
        removed = self.parked.delete_many({"partnerId": endpoint.partner_id, "endpointId": endpoint.id})
        self.endpoints.delete_one({"_id": endpoint.id})
        self.subscriptions.delete_many({"partnerId": _id_match(partner_id), "endpointId": endpoint.id})
        self.partner_store.changed()
        if removed.deleted_count:
            logger.info(
                "deleted endpoint's parked deliveries removed",
                extra={
                    "partner_id": endpoint.partner_id,
                    "endpoint_id": endpoint.id,
                    "parked_deliveries_removed": removed.deleted_count,
                },
            )

    def rotate_secret(self, partner_id: str, endpoint_id: str, overlap: timedelta) -> str:
        """A new current secret; the old one keeps signing for ``overlap`` (none: every earlier
        secret stops at once, as a partner's rotation does)."""
        endpoint = self.get(partner_id, endpoint_id)
        if endpoint.first:
            return self.partner_store.rotate_secret(endpoint.partner_id, overlap)
        new_secret = generate_secret()
        now = self._clock()
        kept = endpoint.secrets_kept_by_rotation(overlap, now)
        self.endpoints.update_one(
            {"_id": endpoint.id},
            {"$set": {"secretKey": new_secret, "previousSecrets": kept, "updatedAt": now}},
        )
        self.partner_store.changed()
        return new_secret

    # --- health (the same fields on either home) ---------------------------------

    def pause(self, endpoint: Endpoint, until: datetime) -> None:
        """Hold the endpoint's deliveries until ``until`` (a later pause wins)."""
        collection, match = self._home(endpoint)
        collection.update_one(match, {"$max": {"pausedUntil": until}})
        self.partner_store.forget(endpoint.partner_id)

    def add_failures(
        self, endpoint: Endpoint, count: int, first_failure: datetime, *, restart: bool = False
    ) -> Endpoint | None:
        """Lengthen the failure streak (or start a new one); None if the endpoint is gone."""
        if restart:
            update = {"$set": {"consecutiveFailures": count, "failingSince": first_failure}}
        else:
            update = {"$inc": {"consecutiveFailures": count}, "$min": {"failingSince": first_failure}}
        collection, match = self._home(endpoint)
        doc = collection.find_one_and_update(match, update, return_document=ReturnDocument.AFTER)
        if doc is None:
            return None
        if endpoint.first:
            return first_endpoint(doc, _to_partner(doc))
        try:
            _, partner = self._partner(endpoint.partner_id)
        except PartnerNotFound:
            return None
        return other_endpoint(doc, partner)

    def reset_failures(self, endpoint: Endpoint) -> None:
        collection, match = self._home(endpoint)
        collection.update_one(match, {"$set": {"consecutiveFailures": 0}, "$unset": {"failingSince": ""}})

    def disable(self, endpoint: Endpoint, reason: str) -> bool:
        """Disable the endpoint; True only for the one caller that actually disabled it."""
        now = self._clock()
        collection, match = self._home(endpoint)
        result = collection.update_one(
            {**match, "endpointDisabledAt": None},
            {"$set": {"endpointDisabledAt": now, "endpointDisabledReason": reason, "updatedAt": now}},
        )
        if result.modified_count == 1:
            self.partner_store.changed()  # other deliverers park its deliveries from now on
        return result.modified_count == 1

    def enable(self, partner_id: str, endpoint_id: str) -> Endpoint:
        """Enable the endpoint and start its health from a clean slate."""
        endpoint = self.get(partner_id, endpoint_id)
        collection, match = self._home(endpoint)
        collection.update_one(
            match,
            {
                "$set": {"consecutiveFailures": 0, "updatedAt": self._clock()},
                "$unset": {
                    "endpointDisabledAt": "",
                    "endpointDisabledReason": "",
                    "failingSince": "",
                    "pausedUntil": "",
                },
            },
        )
        self.partner_store.changed()
        return self.get(partner_id, endpoint_id)

    def _home(self, endpoint: Endpoint) -> tuple[Collection[Any], dict[str, Any]]:
        """The collection and filter of the document that holds the endpoint."""
        if endpoint.first:
            return self.partner_store.partners, {"_id": _id_match(endpoint.partner_id)}
        return self.endpoints, {"_id": endpoint.id, "partnerId": _id_match(endpoint.partner_id)}
