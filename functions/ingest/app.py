"""Ingest Lambda: the events API behind API Gateway (REST API, proxy integration, payload 1.0)."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.config import load_settings
from webhooks.events_api import EventsApi
from webhooks.idempotency import IdempotencyStore
from webhooks.ingest import Ingestor
from webhooks.mongo import get_database
from webhooks.observability import logger, metrics
from webhooks.openapi import EVENTS_PATH, HEALTH_PATHS, OPENAPI_PATH, openapi_document
from webhooks.partners import PartnerStore
from webhooks.queues import SqsQueue, sqs_client

settings = load_settings()
settings.require("events_queue_url")
_db = get_database(settings)
api = EventsApi(
    settings,
    PartnerStore(_db, settings.cache_ttl_seconds),
    Ingestor(SqsQueue(sqs_client(settings), str(settings.events_queue_url)), settings.max_message_bytes),
    IdempotencyStore(_db, timedelta(hours=settings.idempotency_ttl_hours)),
)

app = APIGatewayRestResolver()


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


@app.post(EVENTS_PATH)
def post_events() -> Response:
    event = app.current_event
    reply = api.post_events(
        event.decoded_body,
        event.headers.get("x-api-key"),
        event.headers.get("idempotency-key"),
    )
    return _json(reply.status_code, reply.body)


@app.get(HEALTH_PATHS[0])
@app.get(HEALTH_PATHS[1])
def health() -> Response:
    return _json(200, {"status": "ok"})


@app.get(OPENAPI_PATH)
def openapi() -> Response:
    return _json(200, openapi_document())


@app.not_found
def not_found(_: NotFoundError) -> Response:
    method = app.current_event.http_method
    known = {EVENTS_PATH: "POST", OPENAPI_PATH: "GET", **dict.fromkeys(HEALTH_PATHS, "GET")}
    allowed = known.get(app.current_event.path.rstrip("/") or "/")
    if allowed and allowed != method:
        reply = _json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"Method {method} not allowed"})
        reply.headers["Allow"] = allowed
        return reply
    return _json(HTTPStatus.NOT_FOUND, {"error": "Not found"})


@app.exception_handler(Exception)
def unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error", extra={"error": type(exc).__name__})
    return _json(500, {"error": "Internal server error"})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
