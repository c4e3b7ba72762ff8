"""One deliver invocation as a Powertools batch processor: before its records, see partner
changes and claim the rate-limit slots they need; run the records side by side on a thread
pool; after them, write the delivery log and endpoint health (the processor's prepare,
process and clean hooks)."""

from __future__ import annotations

from concurrent.futures import Executor

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from .deliver import Batch, Deliverer


class DeliveryBatchProcessor(BatchProcessor):
    """Powertools' synchronous SQS processor, with the records' handler calls spread over
    ``workers``: the POSTs of one batch overlap, so a batch of 10 to a slow endpoint takes
    about as long as one. Threads rather than Powertools' AsyncBatchProcessor because the
    work is blocking I/O (urllib3, boto3, pymongo): the async processor would hand every
    record to an executor anyway, after building an event loop per invocation."""

    def __init__(self, deliverer: Deliverer, workers: Executor) -> None:
        # a batch whose every record failed reports each one: SQS retries only those
        super().__init__(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.deliverer = deliverer
        self.workers = workers
        self.batch = Batch()  # this invocation's log records and endpoint outcomes

    def _prepare(self) -> None:
        super()._prepare()  # type: ignore[no-untyped-call]  # Powertools leaves it unannotated
        self.batch = self.deliverer.begin_batch([record.get("body", "") for record in self.records])

    def process(self) -> list[tuple]:  # type: ignore[type-arg]  # as Powertools declares it
        # _process_record turns each handler's result or exception into the processor's
        # success/failure entries (list appends: safe across threads); a lone record runs
        # here, without a hand-off to a worker thread and back
        run = self.workers.map if len(self.records) > 1 else map
        return list(run(self._process_record, self.records))

    def _clean(self) -> None:
        try:
            super()._clean()  # type: ignore[no-untyped-call]
        finally:
            self.deliverer.finish_batch(self.batch)  # time-boxed, never raises
