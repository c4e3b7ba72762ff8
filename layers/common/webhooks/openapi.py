"""The OpenAPI document of the events API, built from the same pydantic models the API uses."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from . import __version__
from .models import ErrorResponse, EventIn, IngestResponse

EVENTS_PATH = "/api/v1/events"
HEALTH_PATHS = ("/health", "/api/v1/health")
OPENAPI_PATH = "/api/v1/openapi.json"
REF_TEMPLATE = "#/components/schemas/{model}"


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=schema)}}},
    }


@cache
def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(EventIn, "validation"), (IngestResponse, "serialization"), (ErrorResponse, "serialization")],
        ref_template=REF_TEMPLATE,
    )
    request_schema = TypeAdapter(list[EventIn]).json_schema(ref_template=REF_TEMPLATE)
    request_schema.pop("$defs", None)
    request_schema["minItems"] = 1
    error = "ErrorResponse"
    health = {
        "get": {
            "summary": "Liveness check",
            "operationId": "health",
            "security": [],
            "responses": {"200": {"description": "The service can serve"}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Webhook notification service",
            "version": __version__,
            "description": "Producers post batches of events; every active partner subscribed "
            "to an event type receives a signed webhook.",
        },
        "paths": {
            EVENTS_PATH: {
                "post": {
                    "summary": "Enqueue a batch of events",
                    "operationId": "postEvents",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "A retry with the same key within 24 h returns the first response",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": request_schema}},
                    },
                    "responses": {
                        "202": _json_response("All events enqueued", "IngestResponse"),
                        "207": _json_response(
                            "Some events enqueued; each result says which", "IngestResponse"
                        ),
                        "400": _json_response("Invalid request body; nothing enqueued", error),
                        "401": _json_response("Missing or invalid API key", error),
                        "409": _json_response("Idempotency-Key in use by a request in progress", error),
                        "413": _json_response("Request or event too large", error),
                        "422": _json_response("Idempotency-Key reused with a different body", error),
                        "500": _json_response("Internal server error", error),
                        "503": {
                            "description": "Nothing enqueued; retry later",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "oneOf": [
                                            {"$ref": REF_TEMPLATE.format(model="IngestResponse")},
                                            {"$ref": REF_TEMPLATE.format(model=error)},
                                        ]
                                    }
                                }
                            },
                        },
                    },
                }
            },
            **{path: health for path in HEALTH_PATHS},
            OPENAPI_PATH: {
                "get": {
                    "summary": "This OpenAPI document",
                    "operationId": "openapi",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document, as JSON"}},
                }
            },
        },
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        },
        "security": [{"ApiKey": []}],
    }
