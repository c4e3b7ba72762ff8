"""Reading a request body as JSON the way the events API accepts it: I-JSON numbers only
(:func:`load_json`, :func:`check_numbers`), data nested no deeper than ``MAX_DATA_DEPTH``, and
validation errors formatted as the field paths a caller can act on."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
from pydantic import ValidationError

from ..errors import InvalidInput
from ..models import EventIn

MAX_LISTED_ERRORS = 20


class BodyError(InvalidInput):
    """The body is not acceptable JSON; ``where`` is the field path (``body`` for the whole),
    and the message starts with it, as the API lists a field's error."""

    def __init__(self, message: str, where: str = "body") -> None:
        super().__init__(f"{where}: {message}")
        self.where = where


# I-JSON (RFC 7493): integers every JSON parser reads exactly, JavaScript's included
MAX_SAFE_INTEGER = 2**53 - 1


class _OutOfRange:
    """Stands in, while parsing, for a number JSON parsers would not read the same."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text if len(text) <= 40 else text[:20] + "..."
        self.reason = reason


def _reject_constant(name: str) -> Any:
    raise BodyError(f"{name} is not valid JSON")


def _find_out_of_range(value: Any, where: tuple[Any, ...] = ()) -> tuple[tuple[Any, ...], _OutOfRange] | None:
    stack: list[tuple[tuple[Any, ...], Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, _OutOfRange):
            return path, item
        if isinstance(item, dict):
            stack.extend(((*path, k), v) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(item))))
    return None


_DIGITS_AS_ZEROS = bytes.maketrans(b"123456789", b"000000000")
# 16 digits in a row: an integer that may be beyond 2^53-1 (15 never are), which orjson
# would quietly read as a float
_LONG_DIGIT_RUN = b"0" * 16


def load_json(body: str, encoded: bytes | None = None) -> tuple[Any, bool]:
    """Parse ``body`` (``encoded``: the same as UTF-8, if the caller has it); numbers parsers
    disagree on are left as markers, and the flag says whether there are any (so a document
    is only walked when it has one)."""
    raw = body.encode("utf-8", "surrogatepass") if encoded is None else encoded
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZEROS):
        # orjson (a 100-event batch: 45 us against 110-210) refuses all the rest this
        # parser refuses (NaN, Infinity, numbers beyond a double, lone surrogates, a BOM),
        # and then the json module below reads the body again to say why
        try:
            return orjson.loads(raw), False
        except orjson.JSONDecodeError:
            pass
    out_of_range: list[_OutOfRange] = []

    def finite_float(text: str) -> float | _OutOfRange:
        value = float(text)
        if not math.isinf(value):
            return value
        out_of_range.append(_OutOfRange(text, "not a finite double"))
        return out_of_range[-1]

    def safe_int(text: str) -> int | _OutOfRange:
        # the digits are counted first: a 5,000-digit integer must not reach int()
        if len(text.lstrip("-")) <= 16 and abs(int(text)) <= MAX_SAFE_INTEGER:
            return int(text)
        out_of_range.append(_OutOfRange(text, "beyond 2^53-1 in magnitude; send it as a string"))
        return out_of_range[-1]

    try:
        value = json.loads(
            body, parse_constant=_reject_constant, parse_float=finite_float, parse_int=safe_int
        )
    except json.JSONDecodeError as exc:
        raise BodyError(f"Malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise BodyError("JSON is nested too deeply") from None
    return value, bool(out_of_range)


def check_numbers(value: Any, where: tuple[Any, ...] = ()) -> None:
    """Raise :class:`BodyError` naming the first number marked out of range in ``value``."""
    found = _find_out_of_range(value, where)
    if found is not None:
        path, number = found
        raise BodyError(f"number {number.text} is out of range ({number.reason})", error_path(path))


def parse_json(body: str) -> Any:
    """JSON as every partner's parser will read it: no NaN/Infinity, no out-of-range numbers."""
    value, marked = load_json(body)
    if marked:
        check_numbers(value)
    return value


# Event data may nest this many levels (data itself is the first): what .NET's System.Text.Json
# reads by default, and far inside the 200 levels pydantic's JSON parser takes in dispatch
# and deliver (deeper data used to be accepted here and then fail there, envelope and all).
MAX_DATA_DEPTH = 64


def deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest more than ``limit`` levels in ``value`` (itself: 1)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def nested_too_deeply(body: str, events: list[EventIn]) -> list[str]:
    """An error per event whose data nests more than MAX_DATA_DEPTH levels."""
    # Each event brings two openers of its own ({ for the event and for data) and the body
    # one ([). An event nested too deeply needs MAX_DATA_DEPTH more; with fewer in the whole
    # body (brackets inside strings only add to the count), no event is walked.
    nested = body.count("{") + body.count("[") - 1 - 2 * len(events)
    if nested < MAX_DATA_DEPTH:
        return []
    return [
        f"[{index}].data: nested deeper than {MAX_DATA_DEPTH} levels"
        for index, event in enumerate(events)
        if deeper_than(event["data"], MAX_DATA_DEPTH)
    ]


def error_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def listed(lines: list[str]) -> str:
    """``lines`` joined with "; ", the first MAX_LISTED_ERRORS and how many more there are."""
    shown = lines[:MAX_LISTED_ERRORS]
    if len(lines) > len(shown):
        shown.append(f"... and {len(lines) - len(shown)} more")
    return "; ".join(shown)


def format_errors(exc: ValidationError) -> str:
    return listed(list(dict.fromkeys(f"{error_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())))
