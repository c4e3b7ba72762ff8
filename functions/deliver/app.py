"""Deliver Lambda: delivery queue -> signed POST to a partner's endpoint, backoff, dead letters."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from webhooks.config import load_settings
from webhooks.delivery.batch import DeliveryBatchProcessor
from webhooks.delivery.deliverer import Deliverer
from webhooks.delivery.health import DisablePolicy, EndpointHealth
from webhooks.delivery.http import WebhookClient
from webhooks.delivery.parked import ParkedDeliveries
from webhooks.delivery.policy import Attempt
from webhooks.delivery.rate_limit import RateLimiter
from webhooks.delivery.receipt import Receipt
from webhooks.endpoints.store import EndpointStore
from webhooks.observability import logger, metrics, tracer
from webhooks.partners.store import PartnerStore
from webhooks.queues import SqsQueue, sqs_client
from webhooks.store.delivery_log import DeliveryLog
from webhooks.store.mongo import get_database

settings = load_settings()
settings.require("delivery_queue_url", "delivery_dlq_url")
_sqs = sqs_client(settings)
_db = get_database(settings)
_endpoints = EndpointStore(_db, PartnerStore(_db, settings.cache_ttl_seconds))
deliverer = Deliverer(
    settings,
    _endpoints,
    WebhookClient(settings.worker_concurrency, settings.allow_private_destinations),
    delivery_queue=SqsQueue(_sqs, str(settings.delivery_queue_url)),
    delivery_dlq=SqsQueue(_sqs, str(settings.delivery_dlq_url)),
    log=DeliveryLog(_db, settings.delivery_log_ttl_days, enabled=settings.delivery_log_enabled),
    limiter=RateLimiter(_db),
    health=EndpointHealth(
        _endpoints,
        DisablePolicy(settings.endpoint_disable_after_failures, settings.endpoint_disable_after_seconds),
    ),
    parked=ParkedDeliveries(_db, settings.delivery_log_ttl_days),
    # operational events (message.attempt.exhausted, endpoint.failing|disabled) go through
    # the pipeline like any other event
    events_queue=SqsQueue(_sqs, settings.events_queue_url) if settings.events_queue_url else None,
)
# The POSTs of one batch run side by side: a batch of 10 to a slow endpoint takes
# about as long as one.
_workers = ThreadPoolExecutor(max_workers=settings.worker_concurrency, thread_name_prefix="deliver")
# X-Ray's recorder; Powertools types it as its BaseProvider, which declares neither call used here
_recorder: Any = tracer.provider


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # POSTs that could not finish before Lambda ends the invocation are not started
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    invoked_at = time.time()
    trace_entity = _recorder.get_trace_entity() if not tracer.disabled else None
    # per invocation: the local runtime runs several in one process
    processor = DeliveryBatchProcessor(deliverer, _workers)

    def deliver(record: SQSRecord) -> Attempt:
        if trace_entity is not None:  # X-Ray's context is per thread: the POSTs join this trace
            _recorder.set_trace_entity(trace_entity)
        receipt = Receipt.of(record.receipt_handle, record["attributes"], invoked_at)
        return deliverer.deliver(record.body, receipt, processor.batch, deadline)

    return process_partial_response(event=event, record_handler=deliver, processor=processor, context=context)
