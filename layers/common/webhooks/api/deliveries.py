"""The delivery log: a partner reads its own, the operator reads any partner's or any event's."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from ..errors import InvalidInput
from ..services.schemas import DeliveryQuery
from .context import ADMIN_SECURITY, PARTNER_SECURITY, admin_errors, calling_partner, errors, services

router = Router()  # under /api/v1
admin = Router()  # under /api/v1/admin

LogQuery = Annotated[DeliveryQuery, Query()]


def _known_parameters_only() -> None:
    # Powertools picks the model's fields out of the query string: a typo such as
    # ?stauts=failed would be ignored, and an unfiltered page is the wrong answer
    unknown = sorted(
        set(router.current_event.query_string_parameters or {}) - set(DeliveryQuery.model_fields)
    )
    if unknown:
        raise InvalidInput("; ".join(f"{name}: Extra inputs are not permitted" for name in unknown), "query")


@router.get(
    "/deliveries",
    operation_id="ownDeliveries",
    summary="The calling partner's own delivery attempts, newest first",
    security=PARTNER_SECURITY,
    tags=["deliveries"],
    responses=errors(400, 401, 500, 503),
)
def own_deliveries(query: LogQuery) -> dict[str, Any]:
    _known_parameters_only()
    return services(router).deliveries.of_partner(calling_partner(router).id, query)


@admin.get(
    "/partners/<partner_id>/deliveries",
    operation_id="partnerDeliveries",
    summary="A partner's delivery attempts, newest first (cursor pagination)",
    security=ADMIN_SECURITY,
    tags=["deliveries"],
    responses=admin_errors(400),
)
def partner_deliveries(partner_id: str, query: LogQuery) -> dict[str, Any]:
    _known_parameters_only()
    return services(admin).deliveries.of_partner(partner_id, query)


@admin.get(
    "/events/<event_id>/deliveries",
    operation_id="eventDeliveries",
    summary="Every attempt of one event, to every partner",
    security=ADMIN_SECURITY,
    tags=["deliveries"],
    responses=admin_errors(),
)
def event_deliveries(event_id: str) -> dict[str, Any]:
    return services(admin).deliveries.of_event(event_id)
