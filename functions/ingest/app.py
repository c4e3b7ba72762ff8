"""Ingest Lambda: the HTTP API behind API Gateway (REST API, proxy integration, payload 1.0).

The events API for producers, the partner-scoped delivery log and the management API for
operators. Routing, auth and validation live in ``webhooks.api``; the work in the services.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.api import app
from webhooks.config import load_settings
from webhooks.observability import logger, metrics, tracer
from webhooks.queues import sqs_client
from webhooks.services import build_services
from webhooks.store.mongo import get_database

settings = load_settings()
settings.require("events_queue_url")
services = build_services(settings, get_database(settings), sqs_client(settings))


# every log line of a request carries API Gateway's request id as correlation_id: the id it
# returns in the x-amzn-RequestId response header and logs as $context.requestId
@logger.inject_lambda_context(clear_state=True, correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    app.append_context(services=services)  # Powertools clears the context after each request
    response: dict[str, Any] = app.resolve(event, context)
    return response
