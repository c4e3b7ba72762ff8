"""The event type catalog (operator): names with the JSON Schema ingest checks data against."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from ..models import EVENT_TYPE_PATTERN
from ..services.answers import Deleted, EventTypeList, EventTypeView, answer
from ..services.schemas import EventTypeRegistration
from .context import admin_operation, ok, services

router = Router()  # under /api/v1/admin/event-types
admin = admin_operation(router, "event types")
NewName = Annotated[
    str, Path(description="dot-separated lowercase segments", pattern=EVENT_TYPE_PATTERN, max_length=200)
]


@admin("GET", "", responses=ok(EventTypeList))
def list_event_types() -> dict[str, Any]:
    """List registered event types"""
    return answer(EventTypeList, {"eventTypes": services(router).event_types.all()})


@admin("GET", "/<name>", 404, responses=ok(EventTypeView))
def get_event_type(name: str) -> dict[str, Any]:
    """Get an event type and its schema"""
    return services(router).event_types.get(name)


@admin("PUT", "/<name>", 400, responses=ok(EventTypeView))
def register_event_type(name: NewName, registration: EventTypeRegistration) -> dict[str, Any]:
    """Register an event type with a JSON Schema for its data (ingest validates against it)"""
    return services(router).event_types.register(name, registration)


@admin("DELETE", "/<name>", 404, responses=ok(Deleted))
def delete_event_type(name: str) -> dict[str, Any]:
    """Unregister an event type"""
    services(router).event_types.delete(name)
    return answer(Deleted, {"deleted": name})
