"""The partner store's in-process caches (API key, partner by id, subscribers of an event
type) and their cross-process invalidation: a write that changes who may publish or receive
raises the revision in ``revisions`` (:meth:`PartnerCache.changed`); :meth:`PartnerCache.sync`,
at the start of each invocation, reads it at most once per ``REVISION_CHECK_SECONDS`` and drops
the caches when it moved."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from .model import Partner

if TYPE_CHECKING:
    from ..endpoints.model import Endpoint
    from .store import Target

REVISION_CHECK_SECONDS = 1.0


class PartnerCache:
    """The caches :class:`~webhooks.partners.store.PartnerStore` reads through."""

    def __init__(self, revisions: Collection[Any], cache_ttl: float) -> None:
        self.revisions = revisions
        self._revision: int | None = None
        self._revision_checked = 0.0
        self._lock = threading.Lock()
        size = 10_000
        ttl = max(cache_ttl, 1e-9)
        self._by_key: TTLCache[str, Partner | None] = TTLCache(size, ttl)
        self._by_id: TTLCache[str, Partner | None] = TTLCache(size, ttl)
        # the endpoints each event type goes to (PartnerStore.targets)
        self._subscribers: TTLCache[str, list[Target]] = TTLCache(size, ttl)
        # endpoints as deliveries read them, by (partner id, endpoint id)
        self._endpoints: TTLCache[tuple[str, str], Endpoint | None] = TTLCache(size, ttl)
        self._cache_enabled = cache_ttl > 0

    def forget(self, partner_id: str) -> None:
        """Drop one partner from the by-id cache, so its next lookup reads the database."""
        with self._lock:
            self._by_id.pop(partner_id, None)
            for key in [k for k in self._endpoints if k[0] == partner_id]:
                self._endpoints.pop(key, None)

    def clear_cache(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._by_id.clear()
            self._subscribers.clear()
            self._endpoints.clear()

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

    def cached_endpoint(
        self, partner_id: str, endpoint_id: str, load: Callable[[], Endpoint | None]
    ) -> Endpoint | None:
        """One endpoint through the cache (``load`` reads it when it is not there)."""
        key = (partner_id, endpoint_id)
        if self._cache_enabled:
            with self._lock:
                if key in self._endpoints:
                    return self._endpoints[key]
        value = load()
        if self._cache_enabled:
            with self._lock:
                self._endpoints[key] = value
        return value

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
