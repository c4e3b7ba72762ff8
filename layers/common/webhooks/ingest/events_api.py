"""The events API behind the ingest handler: size limit, auth, validation, idempotency, enqueue.

Checks run in the order a caller should hear about them: body too large (413), no or bad
API key (401), invalid body (400), idempotency conflict (409/422), then the enqueue
(202/207/503). Nothing is enqueued unless every event is valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from ..config import Settings
from ..errors import Throttled, Unauthenticated
from ..models import EventIn, events_in
from ..observability import MetricUnit, logger, metrics
from ..partners.credentials import PartnerCredential
from .catalog import EventTypeCatalog, validation_budget
from .enqueue import EventTooLarge, Ingestor, accept_events
from .idempotency import IdempotencyConflict, IdempotencyStore, request_fingerprint
from .json_input import (
    MAX_LISTED_ERRORS,
    BodyError,
    check_numbers,
    format_errors,
    listed,
    load_json,
    nested_too_deeply,
)


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _error(status: int, message: str, reason: str) -> Reply:
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=1)
    # by reason as its own metric: a dimension would apply to every metric of the invocation
    metrics.add_metric(name=f"Rejected_{reason}", unit=MetricUnit.Count, value=1)
    logger.info("request rejected", extra={"status": status, "reason": reason})
    return Reply(status, {"error": message})


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
