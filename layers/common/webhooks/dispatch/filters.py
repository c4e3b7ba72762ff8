"""Endpoint event filters: a JSON object matched against the event as the partner receives it
(``{"eventId", "eventType", "timestamp", "data"}``), e.g. ``{"data": {"value": {"$gte": 100}}}``.

The endpoint routes call :func:`parse_filter` when a filter is set (its :class:`FilterError`
becomes the 400, path and all) and store ``EventFilter.document``; the partner store compiles
what is stored with :func:`compile_stored` (once per distinct filter) and dispatch calls
:func:`matches` per (event, endpoint) after the event-type subscription matched. Nothing
here does I/O.

The syntax is Convoy's (``pkg/flatten``, ``pkg/compare``) less ``$regex``:

- An object's keys are field names or operators. A field name nests: ``{"data": {"value":
  ...}}`` is the path ``data.value``, as is the dotted key ``{"data.value": ...}``. A path
  starts at one of the event's four fields; a decimal segment indexes an array
  (``data.items.0.sku``). A plain value (string, number, boolean, null) means ``$eq``.
- Comparisons, on the path of the object they sit in: ``$eq $neq`` (one value), ``$in $nin``
  (an array of 1..MAX_IN_VALUES values), ``$gt $gte $lt $lte`` (a number or a string),
  ``$exists`` (true or false; Convoy's spelling ``$exist`` too).
- ``$and`` / ``$or``: an array of filters, relative to the path they sit in
  (``{"data": {"$or": [{"value": 1}, {"kind": "x"}]}}``). Everything in one object must hold.

What matches (deterministic, never an exception, whatever JSON the event holds):

- ``$eq v``: the field is present and equal to ``v``: numbers by value (``1`` equals ``1.0``),
  strings exactly, ``true``/``false`` only booleans (``true`` is not ``1``), ``null`` only
  null. When the field is an array, equal to one of its elements (Convoy and MongoDB do the
  same): ``{"data": {"tags": "vip"}}`` matches ``"tags": ["new", "vip"]``.
- ``$in [..]``: ``$eq`` one of them. ``$neq`` and ``$nin`` are exactly their negations, so a
  missing field matches them.
- ``$gt $gte $lt $lte``: the field is a number and so is the operand, or both are strings
  (compared by Unicode code point: ISO-8601 timestamps in one format sort by time). Any
  other pairing, a missing field or an array field does not match (Convoy's ``$lte`` is "not
  ``$gt``", so a string would pass it; here it does not).
- ``$exists true``: the path leads to a value, null included; ``false``: it does not.

Cost: :func:`matches` resolves each condition's path once (at most a handful of steps) and
compares scalars; ``$in`` is a set lookup. Time is linear in the filter's size (times an
array field's length, whose elements are scanned), and the filter is bounded: at most
MAX_FILTER_BYTES serialized, MAX_CONDITIONS comparisons, MAX_DEPTH levels of nesting.
"""

from __future__ import annotations

import functools
import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import WebhooksError

MAX_FILTER_BYTES = 4096
MAX_CONDITIONS = 50
MAX_DEPTH = 8  # objects and arrays nested in the filter document, the outermost object is 1
MAX_IN_VALUES = 100
EVENT_FIELDS = ("eventId", "eventType", "timestamp", "data")

_EQUALITY = ("$eq", "$neq", "$in", "$nin")
_RANGES: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_ALIASES = {"$exist": "$exists"}  # Convoy's spelling
OPERATORS = (*_EQUALITY, *_RANGES, "$exists", "$and", "$or")
_SCALAR = "must be a string, number, boolean or null"

Loc = tuple[str | int, ...]
Key = tuple[str, Any]


class FilterError(WebhooksError, ValueError):  # a ValueError too: pydantic validators raise those
    """A filter that cannot be used: ``loc`` is where (pydantic's ``loc`` style, from
    ``"filter"``), ``reason`` what is wrong; ``str()`` reads
    ``filter.data.value.$gte: must be a number or string``."""

    def __init__(self, loc: Loc, reason: str) -> None:
        self.loc = loc
        self.reason = reason
        super().__init__(f"{format_loc(loc)}: {reason}")

    def errors(self) -> list[dict[str, Any]]:
        """As pydantic's ``ValidationError.errors()`` lists a problem."""
        return [{"type": "event_filter", "loc": self.loc, "msg": self.reason}]


def format_loc(loc: Loc) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


# -- the compiled filter: immutable nodes --------------------------------------------------


@dataclass(frozen=True, slots=True)
class OneOf:
    """``$eq``/``$in`` (``negate``: ``$neq``/``$nin``): the value at ``path`` is one of ``keys``."""

    path: tuple[str, ...]
    keys: frozenset[Key]
    negate: bool = False


@dataclass(frozen=True, slots=True)
class Range:
    path: tuple[str, ...]
    op: str  # one of $gt $gte $lt $lte
    operand: Key  # ("number", n) or ("string", s)


@dataclass(frozen=True, slots=True)
class Exists:
    path: tuple[str, ...]
    present: bool


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Node, ...]


Node = OneOf | Range | Exists | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class EventFilter:
    """A parsed filter. ``document`` is its compact JSON, to store and show back;
    ``parse_filter(json.loads(document))`` gives an equal filter."""

    root: AllOf
    document: str
    conditions: int


# -- matching --------------------------------------------------------------------------------

_MISSING = object()


def _key(value: Any) -> Key | None:
    """What equality compares: the JSON kind and the value; None for objects and arrays."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):  # before int: True must not equal 1
        return ("boolean", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    return None


def _resolve(value: Any, path: tuple[str, ...]) -> Any:
    for segment in path:
        if isinstance(value, dict):
            value = value.get(segment, _MISSING)
        elif isinstance(value, list) and segment.isdecimal() and segment.isascii():
            index = int(segment)
            value = value[index] if index < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _one_of(value: Any, keys: frozenset[Key]) -> bool:
    if isinstance(value, list):
        return any(_key(item) in keys for item in value)
    return _key(value) in keys


def _in_range(value: Any, node: Range) -> bool:
    kind, operand = node.operand
    found = _key(value)
    if found is None or found[0] != kind:
        return False
    return _RANGES[node.op](found[1], operand)


def _holds(node: Node, event: Any) -> bool:
    if isinstance(node, AllOf):
        return all(_holds(part, event) for part in node.parts)
    if isinstance(node, AnyOf):
        return any(_holds(part, event) for part in node.parts)
    value = _resolve(event, node.path)
    if isinstance(node, Exists):
        return (value is not _MISSING) == node.present
    if isinstance(node, OneOf):
        return (value is not _MISSING and _one_of(value, node.keys)) != node.negate
    return value is not _MISSING and _in_range(value, node)


def matches(event_filter: EventFilter, event: Any) -> bool:
    """Whether ``event`` passes: the event as the partner receives it, as plain JSON values
    (an ``AcceptedEvent`` dict, or ``Event.model_dump()``; a model object matches nothing)."""
    return _holds(event_filter.root, event)


# -- parsing ---------------------------------------------------------------------------------


def _is_unicode(text: str) -> bool:
    # a lone surrogate (JSON allows "\ud800") can be neither stored in MongoDB nor shown back
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_json(value: Any, loc: Loc, depth: int, budget: list[int]) -> None:
    """JSON values only, nested at most MAX_DEPTH levels, and stopping as soon as the
    characters seen (a lower bound of the serialized size) pass MAX_FILTER_BYTES: a huge
    or deeply nested input costs no more than a filter at the limits."""
    budget[0] -= 1
    if isinstance(value, str):
        budget[0] -= len(value)
    if budget[0] < 0:
        raise FilterError(("filter",), f"is larger than {MAX_FILTER_BYTES} bytes serialized")
    if isinstance(value, str) and not _is_unicode(value):
        raise FilterError(loc, "must be valid Unicode (no lone surrogates)")
    if isinstance(value, dict | list):
        if depth > MAX_DEPTH:
            raise FilterError(loc, f"nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for name, item in value.items():
                if not isinstance(name, str) or not _is_unicode(name):
                    raise FilterError(loc, "keys must be strings of valid Unicode")
                budget[0] -= len(name)
                _check_json(item, (*loc, name), depth + 1, budget)
        else:
            for index, item in enumerate(value):
                _check_json(item, (*loc, index), depth + 1, budget)
    elif isinstance(value, float) and not math.isfinite(value):
        raise FilterError(loc, "must be a finite number")
    elif not isinstance(value, str | int | float) and value is not None:  # bool is an int
        raise FilterError(loc, "is not a JSON value")


class _Compiler:
    def __init__(self) -> None:
        self.conditions = 0

    def fields(self, obj: dict[str, Any], path: tuple[str, ...], loc: Loc) -> list[Node]:
        """The conditions of one filter object at ``path`` (``()``: the event itself)."""
        nodes: list[Node] = []
        for name, value in obj.items():
            here = (*loc, name)
            if name.startswith("$"):
                nodes.append(self.operator(_ALIASES.get(name, name), value, path, here))
                continue
            segments = tuple(name.split("."))
            if any(not part or part.startswith("$") for part in segments):
                raise FilterError(here, "a field name must not be empty or start with $")
            if not path and segments[0] not in EVENT_FIELDS:
                raise FilterError(
                    here,
                    f"the event has no field {segments[0]!r}: a path starts at {', '.join(EVENT_FIELDS)}",
                )
            if isinstance(value, dict):
                if not value:
                    raise FilterError(here, "an empty object sets no condition")
                nodes.extend(self.fields(value, (*path, *segments), here))
            elif isinstance(value, list):
                raise FilterError(
                    here, 'an array is an operand of $in, $nin, $and or $or only: {"$in": [...]}'
                )
            else:
                nodes.append(self.operator("$eq", value, (*path, *segments), here))
        return nodes

    def operator(self, name: str, operand: Any, path: tuple[str, ...], loc: Loc) -> Node:
        if name in ("$and", "$or"):
            return self.logical(name, operand, path, loc)
        if name not in OPERATORS:
            raise FilterError(loc, f"unknown operator; use one of {' '.join(OPERATORS)}")
        if not path:
            raise FilterError(
                loc, f'compares a field: put it in one, e.g. {{"data": {{"value": {{"{name}": ...}}}}}}'
            )
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise FilterError(loc, f"the filter has more than {MAX_CONDITIONS} conditions")
        if name == "$exists":
            if not isinstance(operand, bool):
                raise FilterError(loc, "must be true or false")
            return Exists(path, operand)
        if name in _RANGES:
            key = _key(operand)
            if key is None or key[0] not in ("number", "string"):
                raise FilterError(loc, "must be a number or string")
            return Range(path, name, key)
        if name in ("$eq", "$neq"):
            key = _key(operand)
            if key is None:
                raise FilterError(loc, _SCALAR)
            return OneOf(path, frozenset((key,)), negate=name == "$neq")
        if not isinstance(operand, list) or not 1 <= len(operand) <= MAX_IN_VALUES:
            raise FilterError(loc, f"must be an array of 1 to {MAX_IN_VALUES} values")
        keys = []
        for index, item in enumerate(operand):
            key = _key(item)
            if key is None:
                raise FilterError((*loc, index), _SCALAR)
            keys.append(key)
        return OneOf(path, frozenset(keys), negate=name == "$nin")

    def logical(self, name: str, operand: Any, path: tuple[str, ...], loc: Loc) -> Node:
        if not isinstance(operand, list) or not operand:
            raise FilterError(loc, "must be a non-empty array of filters (objects)")
        parts = []
        for index, item in enumerate(operand):
            if not isinstance(item, dict) or not item:
                raise FilterError((*loc, index), "must be a filter: a non-empty object")
            parts.append(AllOf(tuple(self.fields(item, path, (*loc, index)))))
        return AllOf(tuple(parts)) if name == "$and" else AnyOf(tuple(parts))


def parse_filter(obj: Any) -> EventFilter:
    """Validate and compile a filter (a JSON object, as ``json.loads`` gives it). Raises
    :class:`FilterError` naming the path of the first problem; ``{}`` passes every event."""
    if not isinstance(obj, dict):
        raise FilterError(("filter",), "must be a JSON object")
    _check_json(obj, ("filter",), 1, [MAX_FILTER_BYTES])
    document = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    size = len(document.encode("utf-8"))
    if size > MAX_FILTER_BYTES:
        raise FilterError(("filter",), f"is {size} bytes serialized, more than {MAX_FILTER_BYTES}")
    compiler = _Compiler()
    root = AllOf(tuple(compiler.fields(obj, (), ("filter",))))
    return EventFilter(root, document, compiler.conditions)


def compile_stored(stored: Any) -> EventFilter | FilterError:
    """A filter as MongoDB holds it, compiled: once per distinct JSON text (the compiled
    filters are immutable, so every endpoint with the same filter shares one). A filter that no
    longer parses (written around the API, or by a version with other limits) comes back as
    its :class:`FilterError`, for the caller to decide: dispatch delivers unfiltered."""
    try:
        text = json.dumps(stored, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # a BSON value JSON has no form for (a date, an ObjectId)
        return FilterError(("filter",), "holds a value that is not JSON")
    return _compile_text(text)


@functools.lru_cache(maxsize=4096)
def _compile_text(text: str) -> EventFilter | FilterError:
    try:
        return parse_filter(json.loads(text))
    except FilterError as exc:
        return exc
