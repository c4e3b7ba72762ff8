"""The deliver invocation's processor: records side by side on the workers, a lone one not."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import process_partial_response

from webhooks.delivery.batch import Batch, DeliveryBatchProcessor

from support import sqs_event


class FakeDeliverer:
    def __init__(self) -> None:
        self.finished: list[Batch] = []

    def begin_batch(self, bodies: list[str]) -> Batch:
        return Batch()

    def finish_batch(self, batch: Batch) -> None:
        self.finished.append(batch)


def threads_used(count: int) -> set[str]:
    names: set[str] = set()
    deliverer = FakeDeliverer()
    with ThreadPoolExecutor(max_workers=5, thread_name_prefix="worker") as workers:
        processor = DeliveryBatchProcessor(deliverer, workers)  # type: ignore[arg-type]

        def handler(record: Any) -> None:
            names.add(threading.current_thread().name)

        messages = [{"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": "{}"} for n in range(count)]
        event = sqs_event(messages, "http://127.0.0.1:9/000000000000/delivery")
        reply = process_partial_response(event=event, record_handler=handler, processor=processor)
    assert reply == {"batchItemFailures": []}
    assert len(deliverer.finished) == 1  # the log and health written once, after the records
    return names


def test_a_lone_record_runs_on_the_invocation_thread_a_batch_on_the_workers() -> None:
    assert threads_used(1) == {threading.current_thread().name}
    assert all(name.startswith("worker") for name in threads_used(10))
