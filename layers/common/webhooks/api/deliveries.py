"""The delivery log: a partner reads its own, the operator reads any partner's or any event's."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import ValidationError

from ..errors import InvalidInput, NotFound
from ..ingest.json_input import format_errors
from ..services.answers import DeliveryPage, EventDeliveries, OwnEndpoint, answer
from ..services.schemas import DeliveryQuery
from ..store.delivery_log import StatusFilter
from .context import SELF_SERVICE_SECURITY, admin_operation, calling_partner, ok, operation, services

router = Router()  # under /api/v1
admin_router = Router()  # under /api/v1/admin
partner = partial(operation, router, security=SELF_SERVICE_SECURITY, tags=["deliveries"])
admin = admin_operation(admin_router, "deliveries")

# Each filter documented with its constraints (Powertools flattens a query model to bare
# types); the values are then read by DeliveryQuery, one set of rules for API and CLI.
Status = Annotated[StatusFilter | None, Query()]
Moment = Annotated[
    str | None, Query(description="ISO-8601 date-time", json_schema_extra={"format": "date-time"})
]
Cursor = Annotated[
    str | None, Query(description="nextCursor of the previous page", pattern=r"^[0-9a-f]{24}$")
]
Limit = Annotated[int, Query(ge=1, le=200)]
EventId = Annotated[str | None, Query(description="only this event's attempts")]
EndpointId = Annotated[
    str | None,
    Query(
        description="only the attempts made to this endpoint (the first endpoint's include those "
        "logged before endpoints existed)",
        min_length=1,
        max_length=200,
    ),
]


def _query() -> DeliveryQuery:
    # read from the raw query: a typo such as ?stauts=failed is refused, not ignored
    raw = dict(router.current_event.query_string_parameters or {})
    try:
        return DeliveryQuery.model_validate(raw)
    except ValidationError as exc:
        raise InvalidInput(format_errors(exc), "query") from None


@partner("GET", "/deliveries", 400, 401, 404, 500, 503, responses=ok(DeliveryPage))
def own_deliveries(
    status: Status = None,
    since: Moment = None,
    until: Moment = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    eventId: EventId = None,
    endpointId: EndpointId = None,
) -> dict[str, Any]:
    """The calling partner's own delivery attempts, newest first; 404 if `endpointId` is not
    one of its endpoints"""
    return services(router).deliveries.own(calling_partner(router).id, _query())


@partner("GET", "/deliveries/events/<event_id>", 401, 404, 503, responses=ok(EventDeliveries))
def own_event_deliveries(event_id: str) -> dict[str, Any]:
    """The calling partner's attempts of one event, and the event (type, time, data) it was
    sent; 404 if it has no attempts: another partner's event"""
    log = services(router).deliveries
    found = log.of_partner(calling_partner(router).id, DeliveryQuery.model_validate({"eventId": event_id}))
    if not found["deliveries"]:
        raise NotFound(f"No deliveries of event {event_id!r} to you")
    return answer(
        EventDeliveries,
        {"eventId": event_id, "event": log.event(event_id), "deliveries": found["deliveries"]},
    )


@partner("GET", "/deliveries/endpoint", 401, 503, responses=ok(OwnEndpoint))
def own_endpoint() -> dict[str, Any]:
    """The calling partner's endpoint health: failure streak, disabled or not, paused until"""
    me = calling_partner(router)
    return answer(OwnEndpoint, {"partnerId": me.id, "name": me.name, "endpoint": me.public()["endpoint"]})


@admin("GET", "/deliveries", 400, responses=ok(DeliveryPage))
def all_deliveries(
    status: Status = None,
    since: Moment = None,
    until: Moment = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    eventId: EventId = None,
    endpointId: EndpointId = None,
) -> dict[str, Any]:
    """Every partner's delivery attempts, newest first (cursor pagination)"""
    return services(router).deliveries.of_partner(None, _query())


@admin("GET", "/partners/<partner_id>/deliveries", 400, responses=ok(DeliveryPage))
def partner_deliveries(
    partner_id: str,
    status: Status = None,
    since: Moment = None,
    until: Moment = None,
    cursor: Cursor = None,
    limit: Limit = 50,
    eventId: EventId = None,
    endpointId: EndpointId = None,
) -> dict[str, Any]:
    """A partner's delivery attempts, newest first (cursor pagination)"""
    return services(router).deliveries.of_partner(partner_id, _query())


@admin("GET", "/events/<event_id>/deliveries", responses=ok(EventDeliveries))
def event_deliveries(event_id: str) -> dict[str, Any]:
    """The event (type, time, data; null once no longer stored) and every attempt of it, to
    every partner"""
    return services(router).deliveries.of_event(event_id)
