"""The partner store: partners and their subscriptions in MongoDB.

Collections are the original service's (``partners``, ``subscriptions``), extended:
the API key is stored only as ``apiKeyHash``; rotated secrets stay valid in
``previousSecrets`` until they expire. Lookups that every invocation repeats (API key,
partner by id, subscribers of an event type) go through a short in-process TTL cache.

Revocation does not wait for that cache: every write that changes who may publish or
receive, and how (deactivate, delete, rotate, update, subscriptions, endpoint disabled),
raises a revision number in ``revisions``; :meth:`PartnerStore.sync`, called at the start
of each invocation, reads it (at most once per ``REVISION_CHECK_SECONDS``) and drops the
caches when it moved. A change takes effect everywhere within that bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from cachetools import TTLCache
from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database
from pymongo.errors import PyMongoError

from .errors import NotFound
from .signing import generate_api_key, generate_secret, hash_api_key
from .urls import masked_url

# the platform's own event types: no producer key may publish them
RESERVED_EVENT_PREFIXES = ("endpoint.", "webhook.")
REVISION_CHECK_SECONDS = 1.0


class PartnerNotFound(NotFound, LookupError):
    def __init__(self, partner_id: str = "") -> None:
        super().__init__("Partner not found")
        self.partner_id = partner_id


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    webhook_url: str
    is_active: bool
    secret_key: str
    previous_secrets: tuple[tuple[str, datetime], ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None
    headers: tuple[tuple[str, str], ...] = ()  # sent with every webhook (values may be credentials)
    timeout_ms: int | None = None  # overrides WEBHOOK_TIMEOUT for this partner
    rate_limit: int | None = None  # deliveries per second; None is unlimited
    paused_until: datetime | None = None  # set by a 429 / Retry-After: deliveries wait until then
    # endpoint health: the failure streak, and when (and why) the endpoint was disabled
    consecutive_failures: int = 0
    failing_since: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    # what this partner's API key may publish (exact or `prefix.*`); None: all but reserved
    publish_scopes: tuple[str, ...] | None = None
    # its API key was a plain (Node service) key hashed by `webhooks migrate`: rotate it
    api_key_legacy: bool = False
    # fields of the stored document that had the wrong type (read as absent), e.g.
    # "createdAt is str, not a date-time": a legacy document `webhooks migrate` reports
    problems: tuple[str, ...] = ()

    @property
    def endpoint_disabled(self) -> bool:
        return self.disabled_at is not None

    def paused_for(self, now: datetime | None = None) -> float:
        """Seconds this partner's deliveries should still wait (0 when not paused)."""
        if self.paused_until is None:
            return 0.0
        return max(0.0, (self.paused_until - (now or datetime.now(UTC))).total_seconds())

    def signing_secrets(self, now: datetime | None = None) -> list[str]:
        """The current secret first, then rotated-out secrets that have not expired."""
        now = now or datetime.now(UTC)
        return [self.secret_key] + [s for s, expires in self.previous_secrets if expires > now]

    def may_publish(self, event_type: str) -> str | None:
        """Why this partner's key may not publish ``event_type`` (None: it may)."""
        if event_type.startswith(RESERVED_EVENT_PREFIXES):
            return f"event type {event_type!r} is reserved for the platform"
        if self.publish_scopes is not None and not any(
            subscription_matches(scope, event_type) for scope in self.publish_scopes
        ):
            return f"this API key may not publish event type {event_type!r}"
        return None

    def public(self) -> dict[str, Any]:
        """What the CLI prints: never the secret, the API key hash or URL credentials."""
        return {
            "partnerId": self.id,
            "name": self.name,
            "webhookUrl": masked_url(self.webhook_url),
            "isActive": self.is_active,
            # header values are often the endpoint's own credentials: names only
            "headers": {name: "***" for name, _ in self.headers},
            "timeoutMs": self.timeout_ms,
            "rateLimit": self.rate_limit,
            "publishScopes": list(self.publish_scopes) if self.publish_scopes is not None else None,
            "apiKeyLegacy": self.api_key_legacy,
            "endpoint": {
                "status": "disabled" if self.endpoint_disabled else "enabled",
                "disabledAt": _iso(self.disabled_at),
                "disabledReason": self.disabled_reason,
                "consecutiveFailures": self.consecutive_failures,
                "failingSince": _iso(self.failing_since),
                "pausedUntil": _iso(self.paused_until) if self.paused_for() > 0 else None,
            },
            "createdAt": self.created_at.isoformat() if self.created_at else None,
            "updatedAt": self.updated_at.isoformat() if self.updated_at else None,
        }


@dataclass(frozen=True)
class NewPartner:
    """A created partner with its credentials: the only time they are shown."""

    partner: Partner
    api_key: str
    secret_key: str
    events: list[str] = field(default_factory=list)


def _candidates(event_type: str) -> list[str]:
    """Subscription patterns that match ``event_type``: itself, each ``prefix.*``, and ``*``."""
    parts = event_type.split(".")
    return [event_type] + [".".join(parts[:i]) + ".*" for i in range(len(parts) - 1, 0, -1)] + ["*"]


def subscription_matches(pattern: str, event_type: str) -> bool:
    """The rule the store's query applies: exact, ``prefix.*`` (any depth below), or ``*``."""
    return pattern in _candidates(event_type)


def _iso(moment: datetime | None) -> str | None:
    return _aware(moment).isoformat() if moment else None


def _aware(moment: datetime) -> datetime:
    """MongoDB hands datetimes back naive (in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _maybe_aware(moment: datetime | None) -> datetime | None:
    return _aware(moment) if moment else None


def _id_match(partner_id: str) -> Any:
    """The ``_id`` (or ``partnerId``) value that finds ``partner_id``: partners this service
    creates have ObjectIds, but a legacy document may hold its id as a string (also one of 24
    hex digits), and it must stay readable, deactivatable and deletable."""
    if not isinstance(partner_id, str) or not partner_id:
        raise PartnerNotFound(str(partner_id))
    if ObjectId.is_valid(partner_id):
        return {"$in": [ObjectId(partner_id), partner_id]}
    return partner_id


def _one_id(partner_id: str) -> Any:
    """The id to write into a new subscription: an ObjectId unless the partner's is a string."""
    return ObjectId(partner_id) if ObjectId.is_valid(partner_id) else partner_id


def _is(kind: type) -> Callable[[Any], bool]:
    # bool is an int in Python, never in a document's schema
    return lambda value: isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _list_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


def _secret_entry(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("secretKey"), str)
        and isinstance(value.get("expiresAt"), datetime)
    )


def _string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


# every partner field this service reads, with the type it must have (None counts as absent)
PARTNER_FIELDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "name": ("a string", _is(str)),
    "webhookUrl": ("a string", _is(str)),
    "secretKey": ("a string", _is(str)),
    "apiKeyHash": ("a string", _is(str)),
    "apiKeyLegacy": ("a boolean", _is(bool)),
    "isActive": ("a boolean", _is(bool)),
    "createdAt": ("a date-time", _is(datetime)),
    "updatedAt": ("a date-time", _is(datetime)),
    "previousSecrets": ("a list of {secretKey, expiresAt}", _list_of(_secret_entry)),
    "headers": ("an object of strings", _string_map),
    "timeoutMs": ("an integer", _is(int)),
    "rateLimit": ("an integer", _is(int)),
    "pausedUntil": ("a date-time", _is(datetime)),
    "consecutiveFailures": ("an integer", _is(int)),
    "failingSince": ("a date-time", _is(datetime)),
    "endpointDisabledAt": ("a date-time", _is(datetime)),
    "endpointDisabledReason": ("a string", _is(str)),
    "publishScopes": ("a list of strings", _list_of(_is(str))),
}


def document_problems(doc: dict[str, Any]) -> dict[str, str]:
    """The fields of a stored partner that have the wrong type, each with what it should be."""
    found: dict[str, str] = {}
    for name, (expected, check) in PARTNER_FIELDS.items():
        value = doc.get(name)
        if value is not None and not check(value):
            found[name] = f"{name} is {type(value).__name__}, not {expected}"
    return found


def _to_partner(doc: dict[str, Any]) -> Partner:
    """The partner a document describes; a field of the wrong type is read as absent and
    named in ``problems`` (a legacy document must not break every read of the partners)."""
    bad = document_problems(doc)
    if bad:
        doc = {k: v for k, v in doc.items() if k not in bad}
    previous = tuple((p["secretKey"], _aware(p["expiresAt"])) for p in doc.get("previousSecrets") or [])
    return Partner(
        id=str(doc["_id"]),
        name=doc.get("name", ""),
        webhook_url=doc.get("webhookUrl", ""),
        is_active=doc.get("isActive") is True,
        secret_key=doc.get("secretKey", ""),
        previous_secrets=previous,
        created_at=_maybe_aware(doc.get("createdAt")),
        updated_at=_maybe_aware(doc.get("updatedAt")),
        headers=tuple(sorted((doc.get("headers") or {}).items())),
        timeout_ms=doc.get("timeoutMs"),
        rate_limit=doc.get("rateLimit"),
        paused_until=_maybe_aware(doc.get("pausedUntil")),
        consecutive_failures=int(doc.get("consecutiveFailures") or 0),
        failing_since=_maybe_aware(doc.get("failingSince")),
        disabled_at=_maybe_aware(doc.get("endpointDisabledAt")),
        disabled_reason=doc.get("endpointDisabledReason"),
        publish_scopes=tuple(doc["publishScopes"]) if doc.get("publishScopes") else None,
        api_key_legacy=doc.get("apiKeyLegacy") is True,
        problems=tuple(bad.values()),
    )


class PartnerStore:
    def __init__(
        self,
        db: Database[Any],
        cache_ttl: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.partners = db["partners"]
        self.subscriptions = db["subscriptions"]
        self.revisions = db["revisions"]
        self._revision: int | None = None
        self._revision_checked = 0.0
        self._clock = clock
        self._lock = threading.Lock()
        size = 10_000
        ttl = max(cache_ttl, 1e-9)
        self._by_key: TTLCache[str, Partner | None] = TTLCache(size, ttl)
        self._by_id: TTLCache[str, Partner | None] = TTLCache(size, ttl)
        self._subscribers: TTLCache[str, list[str]] = TTLCache(size, ttl)
        self._cache_enabled = cache_ttl > 0

    def ensure_indexes(self) -> None:
        """Idempotent: creating an index that exists is a no-op."""
        self.partners.create_index("apiKeyHash", unique=True, sparse=True)
        self.partners.create_index("previousApiKeys.apiKeyHash", sparse=True)
        self.partners.create_index("name")
        self.subscriptions.create_index([("eventType", ASCENDING), ("isActive", ASCENDING)])
        self.subscriptions.create_index([("partnerId", ASCENDING), ("eventType", ASCENDING)])

    def forget(self, partner_id: str) -> None:
        """Drop one partner from the by-id cache, so its next lookup reads the database."""
        with self._lock:
            self._by_id.pop(partner_id, None)

    def clear_cache(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._by_id.clear()
            self._subscribers.clear()

    def changed(self) -> None:
        """Tell every process's cache (through :meth:`sync`) that partners changed, and this one's."""
        self.revisions.update_one({"_id": "partners"}, {"$inc": {"rev": 1}}, upsert=True)
        self.clear_cache()

    def sync(self) -> None:
        """Drop the caches if any process changed partners since the last look (one read)."""
        if not self._cache_enabled:
            return
        now = time.monotonic()
        if now - self._revision_checked < REVISION_CHECK_SECONDS:
            return
        try:
            doc = self.revisions.find_one({"_id": "partners"})
        except PyMongoError:
            return  # the lookups that follow will fail or be served from cache, as before
        self._revision_checked = now
        revision = int(doc["rev"]) if doc else 0
        if revision != self._revision:
            if self._revision is not None:
                self.clear_cache()
            self._revision = revision

    # --- writes -----------------------------------------------------------------

    def create(
        self,
        name: str,
        webhook_url: str,
        events: Iterable[str] = (),
        *,
        api_key: str | None = None,
        secret_key: str | None = None,
        is_active: bool = True,
    ) -> NewPartner:
        api_key = api_key or generate_api_key()
        secret_key = secret_key or generate_secret()
        now = self._clock()
        doc = {
            "name": name,
            "webhookUrl": webhook_url,
            "apiKeyHash": hash_api_key(api_key),
            "secretKey": secret_key,
            "previousSecrets": [],
            "isActive": is_active,
            "createdAt": now,
            "updatedAt": now,
        }
        result = self.partners.insert_one(doc)  # DuplicateKeyError if the key is in use
        doc["_id"] = result.inserted_id
        events = list(dict.fromkeys(events))
        try:
            self.subscribe(str(result.inserted_id), events)  # also drops cached "no such key" answers
        except PyMongoError:
            self.remove_unannounced(str(result.inserted_id))
            raise
        return NewPartner(_to_partner(doc), api_key, secret_key, events)

    def remove_unannounced(self, partner_id: str) -> None:
        """Undo a create whose key and secret were never shown (a later write failed):
        no active partner may exist that nobody holds the credentials of. Best effort."""
        match = _id_match(partner_id)
        try:
            self.subscriptions.delete_many({"partnerId": match})
            self.partners.delete_one({"_id": match})
        except PyMongoError:
            pass

    def upsert_by_name(
        self,
        name: str,
        webhook_url: str,
        events: Iterable[str],
        *,
        api_key: str,
        secret_key: str,
        is_active: bool = True,
    ) -> Partner:
        """Create or update the partner called ``name``; its subscriptions become ``events``."""
        now = self._clock()
        doc = self.partners.find_one_and_update(
            {"name": name},
            {
                "$set": {
                    "webhookUrl": webhook_url,
                    "apiKeyHash": hash_api_key(api_key),
                    "secretKey": secret_key,
                    "isActive": is_active,
                    "updatedAt": now,
                },
                "$setOnInsert": {"createdAt": now, "previousSecrets": []},
            },
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None  # upsert=True always returns the document
        partner = _to_partner(doc)
        wanted = list(dict.fromkeys(events))
        stale = [e for e in self.subscriptions_of(partner.id) if e not in wanted]
        self.unsubscribe(partner.id, stale)
        self.subscribe(partner.id, wanted)
        return partner

    def set_active(self, partner_id: str, active: bool) -> Partner:
        return self._update(partner_id, {"$set": {"isActive": active}})

    def update(
        self,
        partner_id: str,
        *,
        name: str | None = None,
        webhook_url: str | None = None,
        is_active: bool | None = None,
        headers: dict[str, str] | None = None,
        timeout_ms: int | None = None,
        rate_limit: int | None = None,
        publish_scopes: list[str] | None = None,
    ) -> Partner:
        """Change the given fields (None leaves one as it is; ``rate_limit=0`` removes the
        limit, ``publish_scopes=[]`` the scopes)."""
        fields = {
            "name": name,
            "webhookUrl": webhook_url,
            "isActive": is_active,
            "headers": headers,
            "timeoutMs": timeout_ms,
            "rateLimit": rate_limit,
            "publishScopes": publish_scopes,
        }
        update: dict[str, Any] = {"$set": {k: v for k, v in fields.items() if v is not None}}
        unset = {
            k: "" for k, v in (("rateLimit", rate_limit), ("publishScopes", publish_scopes)) if v in (0, [])
        }
        for key in unset:
            del update["$set"][key]
        if unset:
            update["$unset"] = unset
        return self._update(partner_id, update)

    def pause(self, partner_id: str, until: datetime) -> None:
        """Hold the partner's deliveries until ``until`` (a later pause wins over an earlier one)."""
        self.partners.update_one({"_id": _id_match(partner_id)}, {"$max": {"pausedUntil": until}})
        self.forget(partner_id)

    def add_failures(
        self, partner_id: str, count: int, first_failure: datetime, *, restart: bool = False
    ) -> Partner | None:
        """Lengthen the failure streak (or, with ``restart``, start a new one); None if deleted."""
        if restart:
            update = {"$set": {"consecutiveFailures": count, "failingSince": first_failure}}
        else:
            update = {"$inc": {"consecutiveFailures": count}, "$min": {"failingSince": first_failure}}
        doc = self.partners.find_one_and_update(
            {"_id": _id_match(partner_id)}, update, return_document=ReturnDocument.AFTER
        )
        return _to_partner(doc) if doc else None

    def reset_failures(self, partner_id: str) -> None:
        self.partners.update_one(
            {"_id": _id_match(partner_id)},
            {"$set": {"consecutiveFailures": 0}, "$unset": {"failingSince": ""}},
        )

    def disable_endpoint(self, partner_id: str, reason: str) -> bool:
        """Disable the endpoint; True only for the one caller that actually disabled it."""
        now = self._clock()
        result = self.partners.update_one(
            {"_id": _id_match(partner_id), "endpointDisabledAt": None},
            {"$set": {"endpointDisabledAt": now, "endpointDisabledReason": reason, "updatedAt": now}},
        )
        if result.modified_count == 1:
            self.changed()  # other deliverers park its deliveries from now on
        return result.modified_count == 1

    def enable_endpoint(self, partner_id: str) -> Partner:
        """Enable the endpoint and start its health from a clean slate."""
        return self._update(
            partner_id,
            {
                "$set": {"consecutiveFailures": 0},
                "$unset": {
                    "endpointDisabledAt": "",
                    "endpointDisabledReason": "",
                    "failingSince": "",
                    "pausedUntil": "",
                },
            },
        )

    def delete(self, partner_id: str) -> None:
        """Remove the partner and its subscriptions (its delivery log stays until it expires)."""
        match = _id_match(partner_id)
        if self.partners.delete_one({"_id": match}).deleted_count == 0:
            raise PartnerNotFound(partner_id)
        self.subscriptions.delete_many({"partnerId": match})
        self.changed()

    def rotate_secret(self, partner_id: str, overlap: timedelta) -> str:
        """Make a new current secret; the old one keeps signing for ``overlap``. No overlap
        is an emergency rotation: every earlier secret stops signing at once, not only the
        one just replaced (a leaked secret may be any of them)."""
        current = self.get(partner_id)
        new_secret = generate_secret()
        now = self._clock()
        kept: list[dict[str, Any]] = []
        if overlap.total_seconds() > 0:
            kept = [{"secretKey": s, "expiresAt": exp} for s, exp in current.previous_secrets if exp > now]
            kept.insert(0, {"secretKey": current.secret_key, "expiresAt": now + overlap})
        self._update(partner_id, {"$set": {"secretKey": new_secret, "previousSecrets": kept}})
        return new_secret

    def rotate_api_key(self, partner_id: str, overlap: timedelta) -> str:
        """A new API key, returned once and stored hashed. The old key keeps working for
        ``overlap`` (its hash in ``previousApiKeys``); no overlap refuses it, and every
        earlier one, at once. A legacy key (``apiKeyLegacy``, set by migrate) is gone."""
        doc = self.partners.find_one({"_id": _id_match(partner_id)}, {"apiKeyHash": 1, "previousApiKeys": 1})
        if doc is None:
            raise PartnerNotFound(partner_id)
        new_key = generate_api_key()
        now = self._clock()
        kept: list[dict[str, Any]] = []
        if overlap.total_seconds() > 0:
            earlier = doc.get("previousApiKeys")
            for entry in earlier if isinstance(earlier, list) else []:
                expires = entry.get("expiresAt") if isinstance(entry, dict) else None
                if isinstance(expires, datetime) and _aware(expires) > now:
                    kept.append({"apiKeyHash": entry.get("apiKeyHash"), "expiresAt": expires})
            if isinstance(doc.get("apiKeyHash"), str):
                kept.insert(0, {"apiKeyHash": doc["apiKeyHash"], "expiresAt": now + overlap})
        update = {
            "$set": {"apiKeyHash": hash_api_key(new_key), "previousApiKeys": kept},
            "$unset": {"apiKeyLegacy": ""},
        }
        self._update(partner_id, update)  # raises the revision: every process drops the old key
        return new_key

    def subscribe(self, partner_id: str, events: Iterable[str]) -> None:
        match, oid = _id_match(partner_id), _one_id(partner_id)
        for event_type in events:
            self.subscriptions.update_one(
                {"partnerId": match, "eventType": event_type},
                {"$set": {"isActive": True}, "$setOnInsert": {"partnerId": oid}},
                upsert=True,
            )
        self.changed()

    def unsubscribe(self, partner_id: str, events: Iterable[str]) -> None:
        match = _id_match(partner_id)
        events = list(events)
        if events:
            self.subscriptions.delete_many({"partnerId": match, "eventType": {"$in": events}})
        self.changed()

    def _update(self, partner_id: str, update: dict[str, Any]) -> Partner:
        update.setdefault("$set", {})["updatedAt"] = self._clock()
        doc = self.partners.find_one_and_update(
            {"_id": _id_match(partner_id)}, update, return_document=ReturnDocument.AFTER
        )
        if doc is None:
            raise PartnerNotFound(partner_id)
        self.changed()
        return _to_partner(doc)

    # --- reads ------------------------------------------------------------------

    def get(self, partner_id: str) -> Partner:
        doc = self.partners.find_one({"_id": _id_match(partner_id)})
        if doc is None:
            raise PartnerNotFound(partner_id)
        return _to_partner(doc)

    def get_cached(self, partner_id: str) -> Partner | None:
        """The partner (active or not) or None if it does not exist; cached briefly."""
        return self._cached(self._by_id, partner_id, self._load_by_id)

    def find_by_api_key(self, api_key: str) -> Partner | None:
        """The active partner holding ``api_key``, or None; cached briefly (by hash)."""
        if not api_key:
            return None
        key_hash = hash_api_key(api_key)
        return self._cached(self._by_key, key_hash, self._load_by_key_hash)

    def all(self) -> list[Partner]:
        return [_to_partner(d) for d in self.partners.find().sort("createdAt", ASCENDING)]

    def subscriptions_of(self, partner_id: str) -> list[str]:
        cursor = self.subscriptions.find(
            {"partnerId": _id_match(partner_id), "isActive": True}, {"eventType": 1}
        )
        return sorted(d["eventType"] for d in cursor)

    def subscribers(self, event_types: Iterable[str]) -> dict[str, list[str]]:
        """Active partner ids with an active matching subscription, per event type.

        Event types not in the cache are resolved together in one aggregation, so a batch
        costs at most one query however many types it has.
        """
        wanted = set(event_types)
        result: dict[str, list[str]] = {}
        with self._lock:
            for event_type in wanted:
                hit = self._subscribers.get(event_type) if self._cache_enabled else None
                if hit is not None:
                    result[event_type] = hit
        missing = wanted - result.keys()
        if missing:
            fresh = self._load_subscribers(missing)
            with self._lock:
                self._subscribers.update(fresh)
            result.update(fresh)
        return result

    def _load_subscribers(self, event_types: set[str]) -> dict[str, list[str]]:
        candidates = {t: _candidates(t) for t in event_types}
        patterns = sorted({p for c in candidates.values() for p in c})
        rows = self.subscriptions.aggregate(
            [
                {"$match": {"eventType": {"$in": patterns}, "isActive": True}},
                {
                    "$lookup": {
                        "from": "partners",
                        "localField": "partnerId",
                        "foreignField": "_id",
                        "as": "partner",
                    }
                },
                {"$unwind": "$partner"},
                {"$match": {"partner.isActive": True}},
                {"$project": {"_id": 0, "eventType": 1, "partnerId": 1}},
            ]
        )
        by_pattern: dict[str, set[str]] = {}
        for row in rows:
            by_pattern.setdefault(row["eventType"], set()).add(str(row["partnerId"]))
        return {
            t: sorted(set().union(*(by_pattern.get(p, set()) for p in pats)))
            for t, pats in candidates.items()
        }

    def _load_by_id(self, partner_id: str) -> Partner | None:
        try:
            return self.get(partner_id)
        except PartnerNotFound:
            return None

    def _load_by_key_hash(self, key_hash: str) -> Partner | None:
        doc = self.partners.find_one({"apiKeyHash": key_hash, "isActive": True})
        if doc is None:  # a key rotated out with an overlap still works until it expires
            unexpired = {"apiKeyHash": key_hash, "expiresAt": {"$gt": self._clock()}}
            doc = self.partners.find_one({"previousApiKeys": {"$elemMatch": unexpired}, "isActive": True})
        return _to_partner(doc) if doc else None

    def _cached(
        self,
        cache: TTLCache[str, Partner | None],
        key: str,
        load: Callable[[str], Partner | None],
    ) -> Partner | None:
        if self._cache_enabled:
            with self._lock:
                if key in cache:
                    return cache[key]
        value = load(key)
        if self._cache_enabled:
            with self._lock:
                cache[key] = value
        return value
