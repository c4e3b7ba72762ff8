"""The event type catalog: event types registered with a JSON Schema for their ``data``.

Ingest validates each event of a registered type against its schema before anything is
enqueued; events of unregistered types are accepted or refused per
UNREGISTERED_EVENT_TYPES. Schemas are cached in-process like partner lookups.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from cachetools import TTLCache
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pymongo.database import Database

MAX_ERRORS_PER_EVENT = 5


class InvalidSchema(ValueError):
    pass


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class EventTypeCatalog:
    def __init__(self, db: Database[Any], cache_ttl: float = 30.0) -> None:
        self.types = db["eventTypes"]
        self._cache: TTLCache[str, Draft202012Validator | None] = TTLCache(10_000, max(cache_ttl, 1e-9))
        self._cache_enabled = cache_ttl > 0
        self._lock = threading.Lock()

    def register(self, name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise InvalidSchema(f"not a valid JSON Schema: {exc.message}") from None
        now = datetime.now(UTC)
        self.types.update_one(
            {"_id": name},
            {
                "$set": {"schema": schema, "description": description, "updatedAt": now},
                "$setOnInsert": {"createdAt": now},
            },
            upsert=True,
        )
        with self._lock:
            self._cache.clear()
        return self.get(name) or {}

    def get(self, name: str) -> dict[str, Any] | None:
        doc = self.types.find_one({"_id": name})
        return self._public(doc) if doc else None

    def all(self) -> list[dict[str, Any]]:
        return [self._public(d) for d in self.types.find().sort("_id", 1)]

    def delete(self, name: str) -> bool:
        deleted = self.types.delete_one({"_id": name}).deleted_count > 0
        with self._lock:
            self._cache.clear()
        return deleted

    def validators(self, names: Iterable[str]) -> dict[str, Draft202012Validator | None]:
        """A validator per event type (None: not registered); one query for all cache misses."""
        wanted = set(names)
        found: dict[str, Draft202012Validator | None] = {}
        if self._cache_enabled:
            with self._lock:
                found = {n: self._cache[n] for n in wanted if n in self._cache}
        missing = wanted - found.keys()
        if missing:
            loaded: dict[str, Draft202012Validator | None] = dict.fromkeys(missing)
            for doc in self.types.find({"_id": {"$in": sorted(missing)}}, {"schema": 1}):
                loaded[doc["_id"]] = Draft202012Validator(doc["schema"])
            if self._cache_enabled:
                with self._lock:
                    self._cache.update(loaded)
            found.update(loaded)
        return found

    @staticmethod
    def errors(index: int, validator: Draft202012Validator, data: dict[str, Any]) -> list[str]:
        """Messages naming the field, e.g. ``[1].data.total: 'x' is not of type 'number'``."""
        problems = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
        return [
            f"[{index}].data{_path(e.absolute_path)}: {e.message}" for e in problems[:MAX_ERRORS_PER_EVENT]
        ]

    @staticmethod
    def _public(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": doc["_id"],
            "schema": doc["schema"],
            "description": doc.get("description", ""),
            "createdAt": doc["createdAt"].isoformat() if doc.get("createdAt") else None,
            "updatedAt": doc["updatedAt"].isoformat() if doc.get("updatedAt") else None,
        }
