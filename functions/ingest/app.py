"""Ingest Lambda: the HTTP API behind API Gateway (REST API, proxy integration, payload 1.0).

The events API for producers, the partner-scoped delivery log, and the management API for
operators (admin key). Routes are thin: they hand the request to the layer and shape the reply.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import timedelta
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.typing import LambdaContext
from pymongo.errors import PyMongoError

from webhooks.catalog import EventTypeCatalog
from webhooks.config import load_settings
from webhooks.delivery_log import DeliveryLog, EventStore
from webhooks.endpoint_health import ParkedDeliveries
from webhooks.events_api import EventsApi, Reply, invalid_body
from webhooks.idempotency import IdempotencyStore
from webhooks.ingest import Ingestor
from webhooks.mongo import get_database
from webhooks.observability import logger, metrics, tracer
from webhooks.openapi import ADMIN, EVENTS_PATH, HEALTH_PATHS, OPENAPI_PATH, allowed_methods, openapi_document
from webhooks.operations import Operations
from webhooks.partners import PartnerStore
from webhooks.queues import SqsQueue, sqs_client

settings = load_settings()
settings.require("events_queue_url")
_db = get_database(settings)
_sqs = sqs_client(settings)
_store = PartnerStore(_db, settings.cache_ttl_seconds)
_catalog = EventTypeCatalog(_db, settings.cache_ttl_seconds)
api = EventsApi(
    settings,
    _store,
    Ingestor(SqsQueue(_sqs, str(settings.events_queue_url)), settings.max_message_bytes),
    IdempotencyStore(_db, timedelta(hours=settings.idempotency_ttl_hours)),
    _catalog,
)
ops = Operations(
    settings,
    _store,
    DeliveryLog(_db, settings.delivery_log_ttl_days),
    EventStore(_db, settings.delivery_log_ttl_days),
    SqsQueue(_sqs, settings.delivery_queue_url) if settings.delivery_queue_url else None,
    _catalog,
    ParkedDeliveries(_db, settings.delivery_log_ttl_days),
)

app = APIGatewayRestResolver()


def _json(reply: Reply) -> Response[Any]:
    return Response(
        status_code=reply.status_code,
        content_type=content_types.APPLICATION_JSON,
        body=reply.body,
        headers=dict(reply.headers),
    )


class NotUtf8(ValueError):
    pass


def _body() -> str | None:
    event = app.current_event
    if not event.is_base64_encoded or not event.body:
        return event.body
    try:
        return base64.b64decode(event.body).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise NotUtf8 from None


@app.exception_handler(NotUtf8)
def not_utf8(_: NotUtf8) -> Response[Any]:
    return _json(invalid_body("body: not valid UTF-8"))


def _query() -> dict[str, str]:
    return dict(app.current_event.query_string_parameters or {})


def admin(operation: Callable[..., Reply]) -> Callable[..., Response[Any]]:
    """Run ``operation`` only for the admin credential (X-Admin-Key)."""

    def route(**params: str) -> Response[Any]:
        event = app.current_event
        refused = ops.check_admin(event.headers.get("x-admin-key"), event.request_context.identity.source_ip)
        return _json(refused or operation(**params))

    route.__name__ = operation.__name__
    return route


@app.post(EVENTS_PATH)
def post_events() -> Response[Any]:
    headers = app.current_event.headers
    return _json(api.post_events(_body(), headers.get("x-api-key"), headers.get("idempotency-key")))


@app.get("/api/v1/deliveries")
def own_deliveries() -> Response[Any]:
    return _json(ops.own_deliveries(app.current_event.headers.get("x-api-key"), _query()))


@app.get(HEALTH_PATHS[0])
@app.get(HEALTH_PATHS[1])
def health() -> Response[Any]:
    return _json(Reply(200, {"status": "ok"}))


@app.get(OPENAPI_PATH)
def openapi() -> Response[Any]:
    return _json(Reply(200, openapi_document()))


P = f"{ADMIN}/partners/<partner_id>"
app.post(f"{ADMIN}/partners")(admin(lambda: ops.create_partner(_body())))
app.get(f"{ADMIN}/partners")(admin(lambda: ops.list_partners()))
app.get(P)(admin(lambda partner_id: ops.get_partner(partner_id)))
app.patch(P)(admin(lambda partner_id: ops.update_partner(partner_id, _body())))
app.delete(P)(admin(lambda partner_id: ops.delete_partner(partner_id)))
app.post(f"{P}/rotate-secret")(admin(lambda partner_id: ops.rotate_secret(partner_id, _body())))
app.get(f"{P}/subscriptions")(admin(lambda partner_id: ops.subscriptions(partner_id)))
app.post(f"{P}/subscriptions")(admin(lambda partner_id: ops.subscriptions(partner_id, _body(), "add")))
app.delete(f"{P}/subscriptions")(admin(lambda partner_id: ops.subscriptions(partner_id, _body(), "remove")))
app.get(f"{P}/deliveries")(admin(lambda partner_id: ops.partner_deliveries(partner_id, _query())))
app.post(f"{P}/replay")(admin(lambda partner_id: ops.replay(partner_id, _body())))
app.post(f"{P}/recover")(admin(lambda partner_id: ops.recover(partner_id, _body())))
app.post(f"{P}/test")(admin(lambda partner_id: ops.send_test(partner_id)))
app.post(f"{P}/endpoint/enable")(admin(lambda partner_id: ops.enable_endpoint(partner_id)))
app.get(f"{ADMIN}/events/<event_id>/deliveries")(admin(lambda event_id: ops.event_deliveries(event_id)))
T = f"{ADMIN}/event-types/<name>"
app.get(f"{ADMIN}/event-types")(admin(lambda: ops.list_event_types()))
app.get(T)(admin(lambda name: ops.get_event_type(name)))
app.put(T)(admin(lambda name: ops.register_event_type(name, _body())))
app.delete(T)(admin(lambda name: ops.delete_event_type(name)))


@app.not_found
def not_found(_: NotFoundError) -> Response[Any]:
    method = app.current_event.http_method
    allowed = allowed_methods(app.current_event.path)
    if allowed and method not in allowed:
        response = _json(Reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"Method {method} not allowed"}))
        response.headers["Allow"] = ", ".join(sorted(allowed))
        return response
    return _json(Reply(HTTPStatus.NOT_FOUND, {"error": "Not found"}))


@app.exception_handler(PyMongoError)
def database_away(exc: PyMongoError) -> Response[Any]:
    # as the events route answers: a dependency is away, retry later (not a bug: no 500)
    logger.warning("partner store unavailable", extra={"error": type(exc).__name__})
    return _json(Reply(503, {"error": "Service temporarily unavailable, please retry"}))


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response[Any]:
    logger.exception("unhandled error", extra={"error": type(exc).__name__})
    return _json(Reply(500, {"error": "Internal server error"}))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
