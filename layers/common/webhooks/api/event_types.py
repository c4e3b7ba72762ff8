"""The event type catalog (operator): names with the JSON Schema ingest checks data against."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from ..models import EVENT_TYPE_PATTERN
from ..services.schemas import EventTypeRegistration
from .context import ADMIN_SECURITY, OK, admin_errors, services

router = Router()  # under /api/v1/admin/event-types
TAGS = ["event types"]
NewName = Annotated[
    str, Path(description="dot-separated lowercase segments", pattern=EVENT_TYPE_PATTERN, max_length=200)
]


@router.get(
    "",
    operation_id="listEventTypes",
    summary="List registered event types",
    responses=OK | admin_errors(),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def list_event_types() -> dict[str, Any]:
    return {"eventTypes": services(router).event_types.all()}


@router.get(
    "/<name>",
    operation_id="getEventType",
    summary="Get an event type and its schema",
    responses=OK | admin_errors(404),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def get_event_type(name: str) -> dict[str, Any]:
    return services(router).event_types.get(name)


@router.put(
    "/<name>",
    operation_id="registerEventType",
    summary="Register an event type with a JSON Schema for its data (ingest validates against it)",
    responses=OK | admin_errors(400),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def register_event_type(name: NewName, registration: EventTypeRegistration) -> dict[str, Any]:
    return services(router).event_types.register(name, registration)


@router.delete(
    "/<name>",
    operation_id="deleteEventType",
    summary="Unregister an event type",
    responses=OK | admin_errors(404),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def delete_event_type(name: str) -> dict[str, Any]:
    services(router).event_types.delete(name)
    return {"deleted": name}
