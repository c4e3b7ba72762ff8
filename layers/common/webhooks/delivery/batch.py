"""One deliver invocation as a Powertools batch processor: before its records, see partner
and endpoint changes and claim the rate-limit slots they need; run the records side by side
on a thread pool; after them, write the delivery log and endpoint health and send the
operational events (the processor's prepare, process and clean hooks)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from ..endpoints.store import EndpointStore
from ..models import DeliveryMessage, Event
from ..observability import logger
from .flow_control import EARLY_TOLERANCE_SECONDS
from .rate_limit import RateLimiter, limiter_key

if TYPE_CHECKING:
    from .deliverer import Deliverer


@dataclass
class Batch:
    """One invocation's delivery log records, endpoint outcomes and operational events
    (``message.attempt.exhausted``), written and sent when it ends.

    Per invocation, not per deliverer: the local runtime runs several invocations of one
    function at once in a process, and one invocation's end must write only its own.
    """

    attempts: list[dict[str, Any]] = field(default_factory=list)
    outcomes: dict[str, Any] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)  # list.append: safe across its threads


def claim_slots(endpoints: EndpointStore, limiter: RateLimiter, bodies: Sequence[str]) -> None:
    """Claim the rate-limit slots a batch needs, one round trip per limited endpoint; a
    delivery that holds a slot already, waits on, or will not go, claims none."""
    wanted: Counter[str] = Counter()
    limits: dict[str, int] = {}
    now = time.time()
    try:
        for body in bodies:
            try:
                message = DeliveryMessage.model_validate_json(body)
            except ValidationError:
                continue
            if message.rateSlot is not None:
                continue  # holds its slot already
            if message.notBefore is not None and message.notBefore - now > EARLY_TOLERANCE_SECONDS:
                continue  # back early: it waits on without a POST
            endpoint = endpoints.get_cached(message.partnerId, message.endpointId)
            if endpoint is None or not endpoint.rate_limit or not endpoint.is_active:
                continue
            if not endpoint.endpoint_disabled and not endpoint.paused_for():
                key = limiter_key(endpoint)
                limits[key] = endpoint.rate_limit
                wanted[key] += 1
        for key, count in wanted.items():
            limiter.reserve(key, limits[key], count)
    except PyMongoError as exc:  # each delivery asks again on its own
        logger.warning("rate limit slots not claimed", extra={"error": type(exc).__name__})


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
        self.batch = Batch()  # this invocation's log records, endpoint outcomes and events

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
