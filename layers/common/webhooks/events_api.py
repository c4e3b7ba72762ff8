"""The events API behind the ingest handler: size limit, auth, validation, idempotency, enqueue.

Checks run in the order a caller should hear about them: body too large (413), no or bad
API key (401), invalid body (400), idempotency conflict (409/422), then the enqueue
(202/207/503). Nothing is enqueued unless every event is valid.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from .catalog import EventTypeCatalog, validation_budget
from .config import Settings
from .credentials import PartnerCredential
from .errors import Throttled, Unauthenticated
from .idempotency import IdempotencyConflict, IdempotencyStore, request_fingerprint
from .ingest import EventTooLarge, Ingestor, accept_events
from .models import EventIn, events_in
from .observability import MetricUnit, logger, metrics

MAX_LISTED_ERRORS = 20


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class BodyError(ValueError):
    """The body is not acceptable JSON; ``where`` is the field path (``body`` for the whole)."""

    def __init__(self, message: str, where: str = "body") -> None:
        super().__init__(message)
        self.where = where


def _error(status: int, message: str, reason: str) -> Reply:
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=1)
    # by reason as its own metric: a dimension would apply to every metric of the invocation
    metrics.add_metric(name=f"Rejected_{reason}", unit=MetricUnit.Count, value=1)
    logger.info("request rejected", extra={"status": status, "reason": reason})
    return Reply(status, {"error": message})


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


def invalid_body(detail: str) -> Reply:
    return _error(400, f"Invalid request body. Errors: {detail}", "invalid_body")


class EventsApi:
    def __init__(
        self,
        settings: Settings,
        credential: PartnerCredential,
        ingestor: Ingestor,
        idempotency: IdempotencyStore,
        catalog: EventTypeCatalog | None = None,
    ) -> None:
        self.settings = settings
        self.credential = credential
        self.ingestor = ingestor
        self.idempotency = idempotency
        self.catalog = catalog

    def post_events(
        self, body: str | None, api_key: str | None, idempotency_key: str | None, source: str = "unknown"
    ) -> Reply:
        body = body or ""
        encoded = body.encode("utf-8", "surrogatepass")
        if len(encoded) > self.settings.max_body_bytes:
            return _error(
                413,
                f"Request body too large: the limit is {self.settings.max_body_bytes} bytes",
                "body_too_large",
            )
        try:
            partner = self.credential.partner(api_key, source)
        except Throttled as exc:
            reply = _error(429, exc.message, "api_key_throttled")
            return Reply(reply.status_code, reply.body, {"Retry-After": str(exc.retry_after)})
        except Unauthenticated as exc:
            return _error(401, exc.message, "invalid_api_key" if api_key else "missing_api_key")
        except PyMongoError as exc:
            logger.warning("partner store unavailable", extra={"error": type(exc).__name__})
            return Reply(503, {"error": "Service temporarily unavailable, please retry"})

        try:
            raw, marked = load_json(body, encoded)
        except BodyError as exc:
            return invalid_body(f"{exc.where}: {exc}")
        try:
            events = events_in.validate_python(raw)
        except ValidationError as exc:
            return invalid_body(format_errors(exc))
        try:  # only the fields that are kept: unknown ones are dropped, numbers and all
            for index, event in enumerate(events if marked else ()):
                check_numbers(event["data"], (index, "data"))
        except BodyError as exc:
            return invalid_body(f"{exc.where}: {exc}")
        too_deep = nested_too_deeply(body, events)
        if too_deep:
            return invalid_body(listed(too_deep))
        if not events:
            return invalid_body("body: must contain at least 1 event")
        if len(events) > self.settings.batch_size:
            return invalid_body(
                f"body: must contain at most {self.settings.batch_size} events (got {len(events)})"
            )
        event_types = list(dict.fromkeys(e["eventType"] for e in events))
        refusals = [r for t in event_types if (r := partner.may_publish(t))]
        if refusals:
            return _error(
                403, f"Forbidden: {'; '.join(refusals[:MAX_LISTED_ERRORS])}", "event_type_forbidden"
            )
        if self.catalog is not None:
            try:
                problems = self._against_catalog(events, event_types, self.catalog)
            except PyMongoError as exc:
                logger.warning("event type catalog unavailable", extra={"error": type(exc).__name__})
                return Reply(503, {"error": "Service temporarily unavailable, please retry"})
            if problems:
                return invalid_body(listed(problems))

        if idempotency_key is None:
            return self._enqueue(events, partner.id)
        if not 1 <= len(idempotency_key) <= 255:
            return _error(400, "Idempotency-Key must be 1 to 255 characters", "bad_idempotency_key")
        try:
            stored = self.idempotency.begin(partner.id, idempotency_key, request_fingerprint(body))
        except IdempotencyConflict as exc:
            return _error(exc.status_code, exc.message, "idempotency_conflict")
        except PyMongoError as exc:
            logger.warning("idempotency store unavailable", extra={"error": type(exc).__name__})
            return Reply(503, {"error": "Service temporarily unavailable, please retry"})
        if stored is not None:
            logger.info("idempotent replay", extra={"partner_id": partner.id})
            return Reply(stored.status_code, stored.body)
        reply = self._enqueue(events, partner.id)
        try:
            if reply.status_code in (202, 207):
                self.idempotency.complete(partner.id, idempotency_key, reply.status_code, reply.body)
            else:
                self.idempotency.release(partner.id, idempotency_key)
        except PyMongoError as exc:
            # The events are enqueued; only the replay record is missing.
            logger.warning("idempotency record not saved", extra={"error": type(exc).__name__})
        return reply

    def _against_catalog(
        self, events: list[EventIn], event_types: list[str], catalog: EventTypeCatalog
    ) -> list[str]:
        validators = catalog.validators(event_types)
        if self.settings.unregistered_event_types != "reject" and not any(validators.values()):
            return []  # no schema registered for any of these types: nothing to check
        problems: list[str] = []
        with validation_budget() as budget:  # one time limit for the request's pattern matching
            for index, event in enumerate(events):
                validator = validators.get(event["eventType"])
                if validator is not None:
                    problems += catalog.errors(index, validator, event["data"])
                    if budget.spent:  # stop at the first match that ran out of time
                        break
                elif self.settings.unregistered_event_types == "reject":
                    problems.append(
                        f"[{index}].eventType: {event['eventType']!r} is not a registered event type"
                    )
        return problems

    def _enqueue(self, events: list[EventIn], partner_id: str) -> Reply:
        accepted = accept_events(events)
        try:
            outcome = self.ingestor.enqueue(accepted, partner_id)
        except EventTooLarge as exc:
            return _error(413, str(exc), "event_too_large")
        failed = outcome.failed
        metrics.add_metric(name="EventsAccepted", unit=MetricUnit.Count, value=len(events) - failed)
        if failed:
            metrics.add_metric(name="EnqueueFailures", unit=MetricUnit.Count, value=failed)
        logger.info(
            "events enqueued" if not failed else "events partly enqueued",
            extra={
                "partner_id": partner_id,
                "event_count": len(events),
                "failed_count": failed,
                "status": outcome.status_code,
            },
        )
        return Reply(outcome.status_code, outcome.response)
