"""One dispatch invocation as a Powertools batch processor: before its records, read every
envelope and query the subscribing endpoints of all their event types at once (the processor's
prepare hook); then fan each record out. A record that fails (store away, fan-out neither
sent nor re-enqueued) is reported in ``batchItemFailures`` and comes back from SQS."""

from __future__ import annotations

import time

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pymongo.errors import PyMongoError

from ..errors import WebhooksError
from ..models import EventEnvelope
from ..partners.store import Target
from .fanout import Dispatcher, UnreadableEnvelope, parse_envelope

# the envelopes' source for the platform's own events (webhooks.delivery.operational_events);
# a producer's envelopes carry its partner id
PLATFORM_SOURCE = "webhooks"


class BatchDeferred(WebhooksError):
    """The partner store was away for the batch's subscriber query: every record is handed
    back to SQS with a short backoff (:meth:`Dispatcher.defer`) and reported as failed."""


class DispatchBatchProcessor(BatchProcessor):
    """Powertools' SQS processor with the batch-wide steps of dispatch in its prepare hook."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        # a batch whose every record failed reports each one: SQS retries only those
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.dispatcher = dispatcher
        self.envelopes: dict[str, EventEnvelope | UnreadableEnvelope] = {}
        self.subscribers: dict[str, list[Target]] = {}
        self.deferred: BatchDeferred | None = None

    def _prepare(self) -> None:
        super()._prepare()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
        self.envelopes = {}
        self.deferred = None
        for record in self.records:
            try:
                self.envelopes[record["messageId"]] = parse_envelope(record["body"])
            except UnreadableEnvelope as exc:
                self.envelopes[record["messageId"]] = exc
        readable = (e for e in self.envelopes.values() if isinstance(e, EventEnvelope))
        try:  # one subscription query for the whole batch
            self.subscribers = self.dispatcher.subscribers(readable)
        except PyMongoError as exc:
            reason = f"partner store unavailable: {type(exc).__name__}"
            self.dispatcher.defer(
                [
                    (r["receiptHandle"], int(r["attributes"].get("ApproximateReceiveCount", 1)))
                    for r in self.records
                ],
                reason,
            )
            self.deferred = BatchDeferred(reason)

    def dispatch(self, record: SQSRecord) -> None:
        """The record handler: dead-letter, bound-check or fan out one envelope."""
        if self.deferred is not None:
            raise self.deferred
        envelope = self.envelopes[record.message_id]
        if isinstance(envelope, UnreadableEnvelope):
            self.dispatcher.dead_letter(record.body, str(envelope), record.message_id)
            return
        sent = record["attributes"].get("SentTimestamp")
        accepted_at = envelope.acceptedAt or (int(sent) / 1000 if sent else time.time())
        if not self.dispatcher.over_bound(envelope, record.body, record.message_id, accepted_at):
            self.dispatcher.fan_out(envelope, self.subscribers, accepted_at)

    def accepted_first_time(self) -> int:
        """Events accepted from producers in this batch (the console's "accepted"): those of
        envelopes received for the first time, less the remainders dispatch re-enqueued (their
        events were counted in the original envelope; a remainder lists what it owes) and the
        platform's own ``endpoint.disabled`` envelopes (no producer sent them)."""
        return sum(
            len(envelope.events)
            for record in self.records
            if isinstance(envelope := self.envelopes.get(record["messageId"]), EventEnvelope)
            and record["attributes"].get("ApproximateReceiveCount", "1") == "1"
            and envelope.owed() is None
            and envelope.source != PLATFORM_SOURCE
        )
