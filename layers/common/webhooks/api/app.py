"""The HTTP API: Powertools' REST resolver with one router per area, auth as middleware,
request bodies validated from the service layer's models, and the OpenAPI document
generated from the routes."""

from __future__ import annotations

import re
from functools import cache, partial
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from .. import __version__
from ..ingest.json_input import parse_json
from ..services.answers import Health
from . import console, deliveries, endpoints, errors, event_types, events, partners, portal, recovery, stats
from .auth import authenticate
from .context import ADMIN, API, ok, operation, stage_prefix
from .parameters import reject_unknown_query
from .replies import NoStoreResolver, dumps

TITLE = "Webhook notification service"
DESCRIPTION = (
    "Producers post batches of events; every active partner subscribed to an event type receives "
    "a signed webhook. Operators manage partners, read the delivery log and replay deliveries "
    "with the admin key."
)
OPENAPI_PATH = f"{API}/openapi.json"
# the security schemes' (name, header); Powertools' OpenAPI models are imported only when the
# document is generated (GET openapi.json, `make openapi`): they were a fifth of ingest's init
SECURITY_HEADERS = {"ApiKey": "X-API-Key", "AdminKey": "X-Admin-Key"}

meta = Router()


public = partial(operation, meta, security=[], tags=["meta"])


@public("GET", "/health", responses=ok(Health))
def health() -> dict[str, str]:
    """Liveness check"""
    return {"status": "ok"}


@public("GET", f"{API}/health", responses=ok(Health))
def api_health() -> dict[str, str]:
    """Liveness check"""
    return {"status": "ok"}


@public("GET", OPENAPI_PATH)
def openapi() -> dict[str, Any]:
    """This OpenAPI document"""
    event = cast(APIGatewayProxyEvent, meta.current_event)
    return served_document(event.request_context.path, event.path)


def served_document(requested_path: str, route_path: str) -> dict[str, Any]:
    """The document with ``servers`` where it was asked for: a request's path (API Gateway's
    ``requestContext.path``) is the route's behind a stage (``/Prod``) or a custom domain's
    base path, so Swagger UI's "Try it out" reaches this API wherever it is served."""
    return {**openapi_document(), "servers": [{"url": stage_prefix(requested_path, route_path) or "/"}]}


def build_app() -> APIGatewayRestResolver:
    app = NoStoreResolver(enable_validation=True, json_body_deserializer=parse_json, serializer=dumps)
    app.use(middlewares=[authenticate, reject_unknown_query])
    app.include_router(meta)
    app.include_router(events.router, prefix=API)
    app.include_router(deliveries.router, prefix=API)
    app.include_router(deliveries.admin_router, prefix=ADMIN)
    app.include_router(stats.router, prefix=ADMIN)
    app.include_router(console.router)
    app.include_router(partners.router, prefix=f"{ADMIN}/partners")
    app.include_router(recovery.router, prefix=f"{ADMIN}/partners")
    app.include_router(portal.router, prefix=f"{ADMIN}/partners")
    app.include_router(endpoints.admin_router, prefix=f"{ADMIN}/partners")
    app.include_router(endpoints.router, prefix=API)
    app.include_router(event_types.router, prefix=f"{ADMIN}/event-types")
    errors.register(app, allowed_methods)
    return app  # Swagger UI: console.swagger_page (this API's document, under the console's CSP)


@cache
def openapi_document() -> dict[str, Any]:
    """The generated document, plus what Powertools cannot see: the events route reads its
    body itself (size, key and fingerprint first), so its request body and header are added."""
    import json

    from aws_lambda_powertools.event_handler.openapi.models import APIKey, HTTPBearer, SecurityScheme

    schemes: dict[str, SecurityScheme] = {
        scheme: APIKey.model_validate({"name": header, "in": "header"})
        for scheme, header in SECURITY_HEADERS.items()
    }
    schemes["PortalToken"] = HTTPBearer.model_validate(
        {"bearerFormat": "wpt_...", "description": "a partner's portal token (POST .../portal-tokens)"}
    )

    doc: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title=TITLE,
            version=__version__,
            description=DESCRIPTION,
            security_schemes=schemes,
        )
    )
    post = doc["paths"][f"{API}/events"]["post"]
    post["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "minItems": 1, "items": {"$ref": "#/components/schemas/EventIn"}}
            }
        },
    }
    post["parameters"] = [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "A retry with the same key within 24 h returns the first response",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
    ]
    schemas = doc["components"]["schemas"]
    schemas.update(_event_schemas())
    # invalid input answers 400 with the API's own error body (the Node-compatible contract),
    # never the 422 Powertools documents for its default validation handler
    # and every route can answer it: a query parameter it does not declare is a 400 on every
    # route of this document (parameters.reject_unknown_query)
    invalid = {
        "description": "Invalid request (e.g. a query parameter the route does not take)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    for methods in doc["paths"].values():
        for described in methods.values():
            if "HTTPValidationError" in json.dumps(described["responses"].get("422", {})):
                del described["responses"]["422"]
            if "400" not in described["responses"]:
                described["responses"] = dict(sorted({**described["responses"], "400": invalid}.items()))
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    return doc


def _event_schemas() -> dict[str, Any]:
    from pydantic import TypeAdapter

    from ..models import EventIn

    ref = "#/components/schemas/{model}"
    found: dict[str, Any] = {"EventIn": TypeAdapter(EventIn).json_schema(ref_template=ref)}
    found["EventIn"]["properties"]["data"]["additionalProperties"] = {"$ref": ref.format(model="JsonValue")}
    safe = 2**53 - 1
    # event data as ingest accepts it: any JSON whose numbers every parser reads the same
    # (I-JSON, RFC 7493); documented conservatively: ingest also takes larger finite floats
    found["JsonValue"] = {
        "description": "Any JSON value; numbers finite and, for integers, within +-(2^53-1) (I-JSON)",
        "anyOf": [
            {"type": "string"},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "number", "minimum": -safe, "maximum": safe},
            {"type": "array", "items": {"$ref": ref.format(model="JsonValue")}},
            {"type": "object", "additionalProperties": {"$ref": ref.format(model="JsonValue")}},
        ],
    }
    return found


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


app = build_app()
