"""The events API behind the ingest handler: size limit, auth, validation, idempotency, enqueue.

Checks run in the order a caller should hear about them: body too large, no or bad API
key, invalid body, idempotency conflict, then the enqueue. A refusal is raised as the
layer's typed error (webhooks.errors; the API maps each to its status: 413, 401 or 429,
400, 403, 409 or 422, 503), counted by reason first; the enqueue's outcome is the answer
(all, some or none enqueued). Nothing is enqueued unless every event is valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from ..config import Settings
from ..errors import (
    UNAVAILABLE,
    Forbidden,
    InvalidInput,
    PayloadTooLarge,
    ServiceError,
    Throttled,
    Unauthenticated,
    Unavailable,
    WebhooksError,
)
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

Refusal = TypeVar("Refusal", bound=ServiceError)


@dataclass(frozen=True)
class Enqueued:
    """The answer to a batch that passed every check: ``status_code`` 202 (all enqueued),
    207 (some) or 503 (none; retry), and the body that lists each event's result."""

    status_code: int
    body: dict[str, Any]


def refused(error: Refusal, reason: str) -> Refusal:
    """Count and log a producer's refused request by ``reason``; returns ``error`` to raise."""
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=1)
    # by reason as its own metric: a dimension would apply to every metric of the invocation
    metrics.add_metric(name=f"Rejected_{reason}", unit=MetricUnit.Count, value=1)
    logger.info("request rejected", extra={"reason": reason, "error": type(error).__name__})
    return error


def invalid_body(detail: str) -> InvalidInput:
    return refused(InvalidInput(detail), "invalid_body")


def _unavailable(what: str, exc: PyMongoError) -> Unavailable:
    logger.warning(f"{what} unavailable", extra={"error": type(exc).__name__})
    return Unavailable(UNAVAILABLE)


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
        self,
        body: str | None,
        api_key: str | None,
        idempotency_key: str | None,
        source: str = "unknown",
        query_refusal: WebhooksError | None = None,
    ) -> Enqueued:
        """Enqueue a producer's batch; raises a :class:`ServiceError` for a refused request.
        ``query_refusal`` (unknown query parameters) is raised once the caller is known."""
        body = body or ""
        encoded = body.encode("utf-8", "surrogatepass")
        if len(encoded) > self.settings.max_body_bytes:
            limit = self.settings.max_body_bytes
            raise refused(
                PayloadTooLarge(f"Request body too large: the limit is {limit} bytes"), "body_too_large"
            )
        try:
            partner = self.credential.partner(api_key, source)
        except Throttled as exc:
            raise refused(exc, "api_key_throttled") from None
        except Unauthenticated as exc:
            raise refused(exc, "invalid_api_key" if api_key else "missing_api_key") from None
        except PyMongoError as exc:
            raise _unavailable("partner store", exc) from None
        if query_refusal is not None:
            raise query_refusal

        try:
            raw, marked = load_json(body, encoded)
            events = events_in.validate_python(raw)
            # only the fields that are kept: unknown ones are dropped, numbers and all
            for index, event in enumerate(events if marked else ()):
                check_numbers(event["data"], (index, "data"))
        except BodyError as exc:  # as a plain InvalidInput: the caller is known already
            raise invalid_body(exc.message) from None
        except ValidationError as exc:
            raise invalid_body(format_errors(exc)) from None
        too_deep = nested_too_deeply(body, events)
        if too_deep:
            raise invalid_body(listed(too_deep))
        if not events:
            raise invalid_body("body: must contain at least 1 event")
        if len(events) > self.settings.batch_size:
            raise invalid_body(
                f"body: must contain at most {self.settings.batch_size} events (got {len(events)})"
            )
        event_types = list(dict.fromkeys(e["eventType"] for e in events))
        refusals = [r for t in event_types if (r := partner.may_publish(t))]
        if refusals:
            message = f"Forbidden: {'; '.join(refusals[:MAX_LISTED_ERRORS])}"
            raise refused(Forbidden(message), "event_type_forbidden")
        if self.catalog is not None:
            try:
                problems = self._against_catalog(events, event_types, self.catalog)
            except PyMongoError as exc:
                raise _unavailable("event type catalog", exc) from None
            if problems:
                raise invalid_body(listed(problems))

        if idempotency_key is None:
            return self._enqueue(events, partner.id)
        if not 1 <= len(idempotency_key) <= 255:
            message = "Idempotency-Key must be 1 to 255 characters"
            raise refused(InvalidInput(message, part=""), "bad_idempotency_key")
        try:
            stored = self.idempotency.begin(partner.id, idempotency_key, request_fingerprint(body))
        except IdempotencyConflict as exc:
            raise refused(exc, "idempotency_conflict") from None
        except PyMongoError as exc:
            raise _unavailable("idempotency store", exc) from None
        if stored is not None:
            logger.info("idempotent replay", extra={"partner_id": partner.id})
            return Enqueued(stored.status_code, stored.body)
        try:
            answer = self._enqueue(events, partner.id)
        except ServiceError:
            self._forget(partner.id, idempotency_key)
            raise
        try:
            if answer.status_code in (202, 207):
                self.idempotency.complete(partner.id, idempotency_key, answer.status_code, answer.body)
            else:
                self.idempotency.release(partner.id, idempotency_key)
        except PyMongoError as exc:
            # The events are enqueued; only the replay record is missing.
            logger.warning("idempotency record not saved", extra={"error": type(exc).__name__})
        return answer

    def _forget(self, partner_id: str, idempotency_key: str) -> None:
        """Release the key of a request that enqueued nothing, so a retry can do the work."""
        try:
            self.idempotency.release(partner_id, idempotency_key)
        except PyMongoError as exc:
            logger.warning("idempotency record not saved", extra={"error": type(exc).__name__})

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

    def _enqueue(self, events: list[EventIn], partner_id: str) -> Enqueued:
        accepted = accept_events(events)
        try:
            outcome = self.ingestor.enqueue(accepted, partner_id)
        except EventTooLarge as exc:
            raise refused(exc, "event_too_large") from None
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
        return Enqueued(outcome.status_code, outcome.response)
