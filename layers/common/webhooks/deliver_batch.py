"""One deliver invocation as a Powertools batch processor: before its records, see partner
changes and claim the rate-limit slots they need; after them, write the delivery log and
endpoint health (the processor's prepare and clean hooks)."""

from __future__ import annotations

from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType

from .deliver import Batch, Deliverer


class DeliveryBatchProcessor(AsyncBatchProcessor):
    def __init__(self, deliverer: Deliverer) -> None:
        # a batch whose every record failed reports each one: SQS retries only those
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.deliverer = deliverer
        self.batch = Batch()  # this invocation's log records and endpoint outcomes

    def _prepare(self) -> None:
        super()._prepare()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
        self.batch = self.deliverer.begin_batch([record.get("body", "") for record in self.records])

    def _clean(self) -> None:
        try:
            super()._clean()  # type: ignore[no-untyped-call]
        finally:
            self.deliverer.finish_batch(self.batch)  # time-boxed, never raises
