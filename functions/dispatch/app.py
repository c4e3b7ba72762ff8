"""Dispatch Lambda: events queue -> one delivery message per (event, subscribed partner)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from pymongo.errors import PyMongoError

from webhooks.config import load_settings
from webhooks.dispatch.fanout import Dispatcher, UnreadableEnvelope, parse_envelope
from webhooks.models import EventEnvelope
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
)

stats = DeliveryStats(_db, settings.delivery_log_ttl_days) if settings.delivery_log_enabled else None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    parsed: dict[str, EventEnvelope | UnreadableEnvelope] = {}
    for raw in event.get("Records", []):
        try:
            parsed[raw["messageId"]] = parse_envelope(raw["body"])
        except UnreadableEnvelope as exc:
            parsed[raw["messageId"]] = exc
    try:  # one subscription query for the whole batch
        subscribers = dispatcher.subscribers(e for e in parsed.values() if isinstance(e, EventEnvelope))
    except PyMongoError as exc:
        records = event.get("Records", [])
        dispatcher.defer(
            [(r["receiptHandle"], int(r["attributes"].get("ApproximateReceiveCount", 1))) for r in records],
            f"partner store unavailable: {type(exc).__name__}",
        )
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}

    def record_handler(record: SQSRecord) -> None:
        envelope = parsed[record.message_id]
        if isinstance(envelope, UnreadableEnvelope):
            dispatcher.dead_letter(record.body, str(envelope), record.message_id)
            return
        sent = record["attributes"].get("SentTimestamp")
        accepted_at = envelope.acceptedAt or (int(sent) / 1000 if sent else time.time())
        if not dispatcher.over_bound(envelope, record.body, record.message_id, accepted_at):
            dispatcher.fan_out(envelope, subscribers, accepted_at)

    # A processor per invocation: it holds per-batch state, and the local runtime may run
    # several invocations at once in one process.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    if stats is not None:  # the console's "events accepted": each envelope on its first receive
        stats.record_accepted(
            sum(
                len(e.events)
                for r in event.get("Records", [])
                if isinstance(e := parsed[r["messageId"]], EventEnvelope)
                and r["attributes"].get("ApproximateReceiveCount", "1") == "1"
            )
        )
    return response
