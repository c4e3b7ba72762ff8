"""Dispatch Lambda: events queue -> one delivery message per (event, subscribed endpoint)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.config import load_settings
from webhooks.dispatch.batch import DispatchBatchProcessor
from webhooks.dispatch.fanout import Dispatcher
from webhooks.observability import logger, metrics, tracer
from webhooks.partners.store import PartnerStore
from webhooks.queues import SqsQueue, sqs_client
from webhooks.store.event_store import EventStore
from webhooks.store.mongo import get_database
from webhooks.store.stats import DeliveryStats

settings = load_settings()
settings.require("events_queue_url", "events_dlq_url", "delivery_queue_url")
_sqs = sqs_client(settings)
_db = get_database(settings)
dispatcher = Dispatcher(
    PartnerStore(_db, settings.cache_ttl_seconds),
    delivery_queue=SqsQueue(_sqs, str(settings.delivery_queue_url)),
    events_queue=SqsQueue(_sqs, str(settings.events_queue_url)),
    events_dlq=SqsQueue(_sqs, str(settings.events_dlq_url)),
    executor=ThreadPoolExecutor(max_workers=4, thread_name_prefix="dispatch"),
    event_store=EventStore(_db, settings.delivery_log_ttl_days) if settings.delivery_log_enabled else None,
    max_message_bytes=settings.max_message_bytes,
)

stats = DeliveryStats(_db, settings.delivery_log_ttl_days) if settings.delivery_log_enabled else None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # A processor per invocation: it holds per-batch state, and the local runtime may run
    # several invocations at once in one process.
    processor = DispatchBatchProcessor(dispatcher)
    response = process_partial_response(
        event=event, record_handler=processor.dispatch, processor=processor, context=context
    )
    if stats is not None and processor.deferred is None:
        stats.record_accepted(processor.accepted_first_time())
    return response
