"""The event type catalog: event types registered with a JSON Schema for their ``data``.

Ingest validates each event of a registered type against its schema before anything is
enqueued; events of unregistered types are accepted or refused per
UNREGISTERED_EVENT_TYPES. Schemas are cached in-process like partner lookups.

Schemas are untrusted input to a process that serves every producer:
- ``$ref`` may only point inside the schema (``#...``): validators get an empty
  ``referencing`` registry that retrieves nothing, so no URL or file is ever fetched
  (jsonschema's default would fetch ``http://`` and ``file://`` refs);
- size and nesting are bounded at registration (a schema nested 400 deep overflowed
  the stack);
- ``pattern`` runs on the ``regex`` engine with a time limit per match, so a pattern that
  backtracks catastrophically fails one event's validation instead of stalling the
  process; ``patternProperties`` (matched by ``re`` inside jsonschema) is not accepted.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import regex
from cachetools import TTLCache
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from pymongo.database import Database
from referencing import Registry
from referencing.exceptions import Unresolvable

from .models import to_json

MAX_ERRORS_PER_EVENT = 5
MAX_SCHEMA_BYTES = 65_536
MAX_SCHEMA_DEPTH = 32
PATTERN_TIMEOUT_SECONDS = 0.05
NO_RETRIEVAL: Registry = Registry()  # type: ignore[type-arg]


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "string"):
        return
    try:
        matched = regex.search(pattern, instance, timeout=PATTERN_TIMEOUT_SECONDS)
    except TimeoutError:
        yield ValidationError(f"does not match {pattern!r} (the pattern took too long to check)")
        return
    except regex.error:
        yield ValidationError(f"the schema's pattern {pattern!r} cannot be used")
        return
    if matched is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


SafeValidator = validators.extend(Draft202012Validator, {"pattern": _pattern})  # type: ignore[no-untyped-call]


def _validator(schema: dict[str, Any]) -> Any:
    return SafeValidator(schema, registry=NO_RETRIEVAL)


def _schema_problem(schema: dict[str, Any]) -> str | None:
    """What makes ``schema`` unsafe to hold and apply (None: nothing)."""
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        return f"larger than {MAX_SCHEMA_BYTES} bytes"
    stack: list[tuple[Any, int]] = [(schema, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_SCHEMA_DEPTH:
            return f"nested deeper than {MAX_SCHEMA_DEPTH} levels"
        if isinstance(node, dict):
            for key in ("$ref", "$dynamicRef"):
                ref = node.get(key)
                if isinstance(ref, str) and not ref.startswith("#"):
                    return f"{key} {ref[:100]!r} points outside the schema: only '#...' refs are allowed"
            if "patternProperties" in node:
                return "patternProperties is not supported (use properties, or propertyNames with a pattern)"
            pattern = node.get("pattern")
            if isinstance(pattern, str):
                try:
                    regex.compile(pattern)
                except regex.error as exc:
                    return f"pattern {pattern[:100]!r} is not a valid regular expression ({exc})"
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return None


class InvalidSchema(ValueError):
    pass


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class EventTypeCatalog:
    COLLECTION = "eventTypes"

    def __init__(self, db: Database[Any], cache_ttl: float = 30.0) -> None:
        self.types = db[self.COLLECTION]
        self._cache: TTLCache[str, Any] = TTLCache(10_000, max(cache_ttl, 1e-9))
        self._cache_enabled = cache_ttl > 0
        self._lock = threading.Lock()

    def register(self, name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
        problem = _schema_problem(schema)
        if problem:
            raise InvalidSchema(f"schema refused: {problem}")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise InvalidSchema(f"not a valid JSON Schema: {exc.message}") from None
        now = datetime.now(UTC)
        self.types.update_one(
            {"_id": name},
            {
                # as JSON text: a schema's keys may be anything JSON allows, BSON keys may not
                "$set": {"schemaJson": to_json(schema), "description": description, "updatedAt": now},
                "$unset": {"schema": ""},
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

    def validators(self, names: Iterable[str]) -> dict[str, Any]:
        """A validator per event type (None: not registered); one query for all cache misses."""
        wanted = set(names)
        found: dict[str, Any] = {}
        if self._cache_enabled:
            with self._lock:
                found = {n: self._cache[n] for n in wanted if n in self._cache}
        missing = wanted - found.keys()
        if missing:
            loaded: dict[str, Any] = dict.fromkeys(missing)
            for doc in self.types.find({"_id": {"$in": sorted(missing)}}, {"schema": 1, "schemaJson": 1}):
                loaded[doc["_id"]] = _validator(_schema_of(doc))
            if self._cache_enabled:
                with self._lock:
                    self._cache.update(loaded)
            found.update(loaded)
        return found

    @staticmethod
    def errors(index: int, validator: Any, data: dict[str, Any]) -> list[str]:
        """Messages naming the field, e.g. ``[1].data.total: 'x' is not of type 'number'``."""
        try:
            found = list(validator.iter_errors(data))
        except (Unresolvable, RecursionError):  # a schema stored before these checks existed
            return [f"[{index}].data: the event type's schema cannot be applied; ask the operator"]
        problems = sorted(found, key=lambda e: list(map(str, e.absolute_path)))
        return [
            f"[{index}].data{_path(e.absolute_path)}: {e.message}" for e in problems[:MAX_ERRORS_PER_EVENT]
        ]

    @staticmethod
    def _public(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": doc["_id"],
            "schema": _schema_of(doc),
            "description": doc.get("description", ""),
            "createdAt": doc["createdAt"].isoformat() if doc.get("createdAt") else None,
            "updatedAt": doc["updatedAt"].isoformat() if doc.get("updatedAt") else None,
        }


def _schema_of(doc: dict[str, Any]) -> Any:
    return json.loads(doc["schemaJson"]) if "schemaJson" in doc else doc["schema"]
