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
- a ``pattern`` of a shape that backtracks catastrophically (``(a+)+``, ``(a|a)*``) is
  refused at registration (regex_safety.py), and so is a schema that refers to itself
  (``{"$ref": "#"}``, ``$defs`` whose ``$ref``s loop): it would recurse on every event;
- ``pattern`` runs on the ``regex`` engine with a time limit per match (50 ms) and one for
  all the matching of a request (``VALIDATION_BUDGET_SECONDS``): validation stops at the
  first match that runs out of time and the request is refused with a 400 naming that
  path, so a schema stored before these checks cannot hold a worker for long (one 457 KB
  request of ``(a+)+$`` items held one for 70 s at 50 ms per item);
  ``patternProperties`` (matched by ``re`` inside jsonschema) is not accepted.
"""

from __future__ import annotations

import json
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from cachetools import TTLCache
from pymongo.database import Database

from ..errors import WebhooksError
from ..models import to_json
from .regex_safety import backtracking_problem

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

# jsonschema, referencing and regex (schema_rules.py) are imported where a schema is
# registered or applied: an ingest whose producers post no registered type never loads
# them (about a tenth of its cold start, docs/PERFORMANCE.md 2026-12-05).

MAX_ERRORS_PER_EVENT = 5
MAX_SCHEMA_BYTES = 65_536
MAX_SCHEMA_DEPTH = 32
PATTERN_TIMEOUT_SECONDS = 0.05
VALIDATION_BUDGET_SECONDS = 1.0  # all the pattern matching of one request, together


@dataclass
class Budget:
    """The time left for one request's pattern matching; ``spent`` once any match ran out."""

    deadline: float
    spent: bool = False


_budget: ContextVar[Budget | None] = ContextVar("schema_validation_budget", default=None)


@contextmanager
def validation_budget(seconds: float = VALIDATION_BUDGET_SECONDS) -> Iterator[Budget]:
    """Bound the pattern matching of everything validated inside (one request)."""
    budget = Budget(time.monotonic() + seconds)
    token = _budget.set(budget)
    try:
        yield budget
    finally:
        _budget.reset(token)


def _validator(schema: dict[str, Any]) -> Any:
    from .schema_rules import NO_RETRIEVAL, SafeValidator

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
                import regex

                try:
                    regex.compile(pattern)
                except regex.error as exc:
                    return f"pattern {pattern[:100]!r} is not a valid regular expression ({exc})"
                slow = backtracking_problem(pattern)
                if slow:
                    return f"pattern {pattern[:100]!r} may backtrack catastrophically: {slow}"
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return _reference_loop(schema)


def _unescape(segment: str) -> str:
    return unquote(segment).replace("~1", "/").replace("~0", "~")


def _exists(schema: Any, pointer: tuple[str, ...]) -> bool:
    node = schema
    for part in pointer:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _reference_loop(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` refers to itself (None: it does not). A ``$ref`` whose target holds,
    directly or through other ``$ref``s, that same ``$ref`` makes validation recurse on
    every event until the stack runs out; refused here rather than failing at ingest."""
    refs: list[tuple[tuple[str, ...], str]] = []  # (where the $ref is, what it names)
    anchors: dict[str, tuple[str, ...]] = {}
    stack: list[tuple[Any, tuple[str, ...]]] = [(schema, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key in ("$dynamicRef", "$recursiveRef"):
                if key in node:
                    return f"{key} is not supported (a schema may not refer to itself)"
            if path and isinstance(node.get("$id"), str):
                return "$id is only supported at the top of the schema"
            if isinstance(node.get("$anchor"), str):
                anchors[node["$anchor"]] = path
            if isinstance(node.get("$ref"), str):
                refs.append((path, node["$ref"]))
            stack.extend((v, (*path, str(k))) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, (*path, str(i))) for i, v in enumerate(node))
    named: list[tuple[tuple[str, ...], tuple[str, ...]]] = []  # (where, the schema it names)
    for where, ref in refs:
        fragment = ref[1:]
        if fragment.startswith("/") or not fragment:
            pointer = tuple(_unescape(s) for s in fragment.split("/")[1:])
            if not _exists(schema, pointer):
                return f"$ref {ref[:100]!r} names nothing in the schema"
            named.append((where, pointer))
        elif fragment in anchors:
            named.append((where, anchors[fragment]))
        else:
            return f"$ref {ref[:100]!r} names nothing in the schema"
    # a graph of the schemas refs name: T -> U when a $ref inside T names U; a cycle loops
    named.sort()
    wheres = [where for where, _ in named]
    edges: dict[tuple[str, ...], set[tuple[str, ...]]] = {}
    for target in {t for _, t in named}:
        first = bisect_left(wheres, target)
        edges[target] = set()
        for where, next_target in named[first:]:
            if where[: len(target)] != target:
                break
            edges[target].add(next_target)
    state: dict[tuple[str, ...], int] = {}  # 1: being followed, 2: done
    for start in edges:
        if state.get(start):
            continue
        walk = [(start, iter(edges[start]))]
        state[start] = 1
        while walk:
            current, pending = walk[-1]
            step = next(pending, None)
            if step is None:
                state[current] = 2
                walk.pop()
            elif state.get(step) == 1:
                looped = "#/" + "/".join(step) if step else "#"
                return f"$ref {looped[:100]!r} refers back to itself (recursive schemas are not supported)"
            elif not state.get(step):
                state[step] = 1
                walk.append((step, iter(edges[step])))
    return None


class InvalidSchema(WebhooksError):
    """A JSON Schema the catalog will not register; the message says why."""


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
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

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
        """Messages naming the field, e.g. ``[1].data.total: 'x' is not of type 'number'``.

        Inside :func:`validation_budget`, a match that runs out of time ends the check:
        that error is the only one reported, and the budget is marked spent."""
        from referencing.exceptions import Unresolvable

        from .schema_rules import OutOfTime  # loaded already: it made ``validator``

        found: list[ValidationError] = []
        try:
            for error in validator.iter_errors(data):
                if isinstance(error, OutOfTime):
                    return [f"[{index}].data{_path(error.absolute_path)}: {error.message}"]
                found.append(error)
                budget = _budget.get()
                if budget is not None and budget.spent:  # ran out inside anyOf/oneOf/not
                    break
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
