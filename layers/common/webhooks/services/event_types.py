"""The event type catalog: names with a JSON Schema that ingest validates events against."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from ..errors import InvalidInput, NotFound
from ..ingest.catalog import EventTypeCatalog, InvalidSchema
from ..models import EventType
from .answers import EventTypeView, answer
from .schemas import EventTypeRegistration

_event_type: TypeAdapter[str] = TypeAdapter(EventType)


class EventTypeService:
    def __init__(self, catalog: EventTypeCatalog) -> None:
        self.catalog = catalog

    def all(self) -> list[dict[str, Any]]:
        return [answer(EventTypeView, found) for found in self.catalog.all()]

    def get(self, name: str) -> dict[str, Any]:
        found = self.catalog.get(name)
        if found is None:
            raise NotFound(f"Event type {name!r} is not registered")
        return answer(EventTypeView, found)

    def register(self, name: str, registration: EventTypeRegistration) -> dict[str, Any]:
        try:
            _event_type.validate_python(name)
        except ValidationError:
            raise InvalidInput(
                f"Invalid event type {name!r}: dot-separated lowercase segments, e.g. order.created", part=""
            ) from None
        try:
            registered = self.catalog.register(name, registration.json_schema, registration.description)
        except InvalidSchema as exc:
            raise InvalidInput(f"schema: {exc}") from None
        return answer(EventTypeView, registered)

    def delete(self, name: str) -> None:
        if not self.catalog.delete(name):
            raise NotFound(f"Event type {name!r} is not registered")
