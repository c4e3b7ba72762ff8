"""The OpenAPI document of the HTTP API, built from the same pydantic models the API uses."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from . import __version__
from .models import ErrorResponse, EventIn, IngestResponse

EVENTS_PATH = "/api/v1/events"
HEALTH_PATHS = ("/health", "/api/v1/health")
OPENAPI_PATH = "/api/v1/openapi.json"
ADMIN = "/api/v1/admin"
REF = "#/components/schemas/{model}"
ERROR = "ErrorResponse"


def _ref(model: str) -> dict[str, str]:
    return {"$ref": REF.format(model=model)}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Invalid request",
        401: "Missing or invalid credential",
        403: "Admin API not enabled",
        404: "Not found",
        409: "Conflict",
        413: "Too large",
        422: "Unprocessable",
        500: "Internal server error",
        503: "A dependency is unavailable; retry later",
    }
    return {str(c): _json(text[c], _ref(ERROR)) for c in codes}


def _op(
    summary: str,
    op_id: str,
    responses: dict[str, Any],
    *,
    body: str | None = None,
    security: list[dict[str, list[str]]] | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "responses": responses}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if security is not None:
        op["security"] = security
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


DELIVERY_QUERY = [
    {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["delivered", "failed"]}},
    {"name": "since", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {"name": "until", "in": "query", "schema": {"type": "string", "format": "date-time"}},
    {
        "name": "cursor",
        "in": "query",
        "description": "nextCursor of the previous page",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
    },
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
    {"name": "eventId", "in": "query", "schema": {"type": "string"}},
]
ANY_OBJECT = {"type": "object"}
SAFE_INTEGER = 2**53 - 1
# Event data as ingest accepts it: any JSON whose numbers every parser reads the same
# (I-JSON, RFC 7493). Documented conservatively: ingest also takes larger finite floats.
JSON_VALUE: dict[str, Any] = {
    "description": "Any JSON value; numbers finite and, for integers, within +-(2^53-1) (I-JSON)",
    "anyOf": [
        {"type": "string"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "number", "minimum": -SAFE_INTEGER, "maximum": SAFE_INTEGER},
        {"type": "array", "items": _ref("JsonValue")},
        {"type": "object", "additionalProperties": _ref("JsonValue")},
    ],
}


@cache
def openapi_document() -> dict[str, Any]:
    from .operations import (
        EventPatterns,
        EventTypeRegistration,
        PartnerCreate,
        PartnerUpdate,
        RecoverRequest,
        ReplayRequest,
        Rotation,
    )

    models: list[type[BaseModel]] = [
        EventTypeRegistration,
        EventIn,
        PartnerCreate,
        PartnerUpdate,
        EventPatterns,
        Rotation,
        ReplayRequest,
        RecoverRequest,
    ]
    _, defs = models_json_schema(
        [(m, "validation") for m in models]
        + [(IngestResponse, "serialization"), (ErrorResponse, "serialization")],
        ref_template=REF,
    )
    defs["$defs"]["EventIn"]["properties"]["data"]["additionalProperties"] = _ref("JsonValue")
    request_schema = TypeAdapter(list[EventIn]).json_schema(ref_template=REF)
    request_schema.pop("$defs", None)
    request_schema["minItems"] = 1
    public: list[dict[str, list[str]]] = []
    admin: list[dict[str, list[str]]] = [{"AdminKey": []}]
    partner = [_path_param("partner_id")]
    ok = {"200": _json("OK", ANY_OBJECT)}
    accepted = {
        "202": _json("Enqueued for delivery", ANY_OBJECT),
        "207": _json("Partly enqueued", ANY_OBJECT),
    }
    health = {
        "get": _op(
            "Liveness check", "health", {"200": _json("The service can serve", ANY_OBJECT)}, security=public
        )
    }
    events_post = _op(
        "Enqueue a batch of events",
        "postEvents",
        {
            "202": _json("All events enqueued", _ref("IngestResponse")),
            "207": _json("Some events enqueued; each result says which", _ref("IngestResponse")),
            **_errors(400, 401, 409, 413, 422, 500),
            "403": _json(
                "Nothing enqueued: an event type is reserved for the platform or outside the key's "
                "publish scopes",
                _ref(ERROR),
            ),
            "503": _json("Nothing enqueued; retry later", {"oneOf": [_ref("IngestResponse"), _ref(ERROR)]}),
        },
        params=[
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "A retry with the same key within 24 h returns the first response",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        ],
    )
    events_post["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": request_schema}},
    }
    paths: dict[str, Any] = {
        EVENTS_PATH: {"post": events_post},
        "/api/v1/deliveries": {
            "get": _op(
                "The calling partner's own delivery attempts, newest first",
                "ownDeliveries",
                {**ok, **_errors(400, 401, 500)},
                params=DELIVERY_QUERY,
            )
        },
        **{path: health for path in HEALTH_PATHS},
        OPENAPI_PATH: {
            "get": _op(
                "This OpenAPI document",
                "openapi",
                {"200": _json("The OpenAPI document", ANY_OBJECT)},
                security=public,
            )
        },
        f"{ADMIN}/partners": {
            "get": _op("List partners", "listPartners", {**ok, **_errors(401, 403, 500)}, security=admin),
            "post": _op(
                "Create a partner (returns its API key and secret once)",
                "createPartner",
                {"201": _json("Created", ANY_OBJECT), **_errors(400, 401, 403, 409, 500)},
                body="PartnerCreate",
                security=admin,
            ),
        },
        f"{ADMIN}/partners/{{partner_id}}": {
            "get": _op(
                "Get a partner",
                "getPartner",
                {**ok, **_errors(401, 403, 404, 500)},
                security=admin,
                params=partner,
            ),
            "patch": _op(
                "Update name, URL, active state, headers, timeout, rate limit or publish scopes",
                "updatePartner",
                {**ok, **_errors(400, 401, 403, 404, 500)},
                body="PartnerUpdate",
                security=admin,
                params=partner,
            ),
            "delete": _op(
                "Delete a partner and its subscriptions",
                "deletePartner",
                {**ok, **_errors(401, 403, 404, 500)},
                security=admin,
                params=partner,
            ),
        },
        f"{ADMIN}/partners/{{partner_id}}/rotate-secret": {
            "post": _op(
                "Rotate the signing secret (the old one signs too, for the overlap)",
                "rotateSecret",
                {**ok, **_errors(400, 401, 403, 404, 500)},
                body="Rotation",
                security=admin,
                params=partner,
            )
        },
        f"{ADMIN}/partners/{{partner_id}}/subscriptions": {
            "get": _op(
                "List subscriptions",
                "listSubscriptions",
                {**ok, **_errors(401, 403, 404, 500)},
                security=admin,
                params=partner,
            ),
            "post": _op(
                "Subscribe to event types",
                "addSubscriptions",
                {**ok, **_errors(400, 401, 403, 404, 500)},
                body="EventPatterns",
                security=admin,
                params=partner,
            ),
            "delete": _op(
                "Unsubscribe from event types",
                "removeSubscriptions",
                {**ok, **_errors(400, 401, 403, 404, 500)},
                body="EventPatterns",
                security=admin,
                params=partner,
            ),
        },
        f"{ADMIN}/partners/{{partner_id}}/deliveries": {
            "get": _op(
                "A partner's delivery attempts, newest first (cursor pagination)",
                "partnerDeliveries",
                {**ok, **_errors(400, 401, 403, 500)},
                security=admin,
                params=partner + DELIVERY_QUERY,
            )
        },
        f"{ADMIN}/partners/{{partner_id}}/replay": {
            "post": _op(
                "Resend one event to the partner",
                "replay",
                {**accepted, **_errors(400, 401, 403, 404, 409, 500, 503)},
                body="ReplayRequest",
                security=admin,
                params=partner,
            )
        },
        f"{ADMIN}/partners/{{partner_id}}/recover": {
            "post": _op(
                "Resend every delivery that failed since a time",
                "recover",
                {**accepted, **_errors(400, 401, 403, 404, 409, 500, 503)},
                body="RecoverRequest",
                security=admin,
                params=partner,
            )
        },
        f"{ADMIN}/partners/{{partner_id}}/test": {
            "post": _op(
                "Send a webhook.test event now",
                "sendTest",
                {**accepted, **_errors(401, 403, 404, 409, 500, 503)},
                security=admin,
                params=partner,
            )
        },
        f"{ADMIN}/partners/{{partner_id}}/endpoint/enable": {
            "post": _op(
                "Enable an endpoint that was disabled for failing, and send it the deliveries "
                "parked meanwhile (up to 5,000 per call; remainingParked says if more are left)",
                "enableEndpoint",
                {**ok, "207": _json("Enabled; some parked deliveries not sent", ANY_OBJECT)}
                | _errors(401, 403, 404, 500, 503),
                security=admin,
                params=partner,
            )
        },
        f"{ADMIN}/event-types": {
            "get": _op(
                "List registered event types",
                "listEventTypes",
                {**ok, **_errors(401, 403, 500)},
                security=admin,
            )
        },
        f"{ADMIN}/event-types/{{name}}": {
            "get": _op(
                "Get an event type and its schema",
                "getEventType",
                {**ok, **_errors(401, 403, 404, 500)},
                security=admin,
                params=[_path_param("name")],
            ),
            "put": _op(
                "Register an event type with a JSON Schema for its data (ingest validates against it)",
                "registerEventType",
                {**ok, **_errors(400, 401, 403, 500)},
                body="EventTypeRegistration",
                security=admin,
                params=[_path_param("name")],
            ),
            "delete": _op(
                "Unregister an event type",
                "deleteEventType",
                {**ok, **_errors(401, 403, 404, 500)},
                security=admin,
                params=[_path_param("name")],
            ),
        },
        f"{ADMIN}/events/{{event_id}}/deliveries": {
            "get": _op(
                "Every attempt of one event, to every partner",
                "eventDeliveries",
                {**ok, **_errors(401, 403, 500)},
                security=admin,
                params=[_path_param("event_id")],
            )
        },
    }
    for operations in paths.values():  # failed admin keys are throttled per source
        for operation in operations.values():
            if operation.get("security") == admin:
                operation["responses"]["429"] = _json(
                    "Too many failed admin key attempts from this source; see Retry-After", _ref(ERROR)
                )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Webhook notification service",
            "version": __version__,
            "description": "Producers post batches of events; every active partner subscribed "
            "to an event type receives a signed webhook. Operators manage partners, read the delivery "
            "log and replay deliveries with the admin key.",
        },
        "paths": paths,
        "components": {
            "schemas": {**defs["$defs"], "JsonValue": JSON_VALUE},
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "AdminKey": {"type": "apiKey", "in": "header", "name": "X-Admin-Key"},
            },
        },
        "security": [{"ApiKey": []}],
    }


@cache
def _route_patterns() -> list[tuple[re.Pattern[str], frozenset[str]]]:
    patterns = []
    for path, operations in openapi_document()["paths"].items():
        regex = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "/?$"
        patterns.append((re.compile(regex), frozenset(m.upper() for m in operations)))
    return patterns


def allowed_methods(path: str) -> frozenset[str]:
    """The methods the API serves on ``path`` (empty: no such path), for 404 vs 405."""
    for pattern, methods in _route_patterns():
        if pattern.match(path):
            return methods
    return frozenset()
