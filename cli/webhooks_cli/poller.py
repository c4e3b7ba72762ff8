"""An SQS poller with the semantics of Lambda's SQS event source mapping.

Each of ``concurrency`` threads long-polls the queue, hands the handler a real SQS batch
event, then deletes exactly the records not listed in ``batchItemFailures``. If the
handler raises, nothing is deleted and the whole batch comes back after its visibility
timeout. SQS errors (the endpoint away) back off and resume.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from .lambdas import Handler, LambdaContext

log = logging.getLogger("webhooks.local")

RECEIVE_WAIT_SECONDS = 1  # short, so a stop is noticed quickly; SQS returns at once on arrival


@dataclass(frozen=True)
class PollerConfig:
    function_name: str
    queue_url: str
    batch_size: int = 10
    max_batching_window: float = 0.0
    concurrency: int = 1
    timeout_seconds: float = 60.0
    # how much lower than the process's the CPU priority of this poller's threads is (and of
    # the threads its handler starts, which inherit it): background work yields to the API
    nice: int = 0


def _arn(queue_url: str) -> str:
    return f"arn:aws:sqs:us-east-1:000000000000:{queue_url.rstrip('/').rsplit('/', 1)[-1]}"


def to_lambda_record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    """An SQS message as Lambda presents it to a handler."""
    attributes = dict(message.get("Attributes", {}))
    attributes.setdefault("ApproximateReceiveCount", "1")
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.get("DataType", "String"),
        }
        for name, value in message.get("MessageAttributes", {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": _arn(queue_url),
        "awsRegion": "us-east-1",
    }


def lower_thread_priority(increment: int) -> None:
    """Make the calling thread's nice value ``increment`` higher (at most 19). Linux keeps a
    nice value per thread and a new thread inherits its creator's, so the handler's worker
    threads started from here run at the same priority. Elsewhere, or if the system refuses,
    the thread keeps its priority."""
    if increment <= 0:
        return
    try:
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + increment))
    except (AttributeError, OSError) as exc:
        log.debug("thread priority unchanged: %s", exc)


def failed_ids(result: Any) -> set[str]:
    if not isinstance(result, dict):
        return set()
    return {str(f.get("itemIdentifier")) for f in result.get("batchItemFailures") or []}


class Poller:
    def __init__(self, client: Any, handler: Handler, config: PollerConfig) -> None:
        self.client = client
        self.handler = handler
        self.config = config
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        # The threads receive side by side, as Lambda's pollers do: SQS, LocalStack and the
        # embedded emulator each give a message to one receive only (moto's own receive
        # did not: sqs_server's _receive_one_scan_at_a_time fixes it, and
        # tests/integration/test_sqs_emulator.py::test_receives_at_once_never_take_the_same_message
        # proves it).

    def start(self) -> None:
        for n in range(self.config.concurrency):
            thread = threading.Thread(
                target=self._loop, name=f"poller-{self.config.function_name}-{n}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop receiving; an invocation in flight finishes and its deletes are made."""
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _loop(self) -> None:
        lower_thread_priority(self.config.nice)
        backoff = 0.25
        while not self._stopping.is_set():
            try:
                messages = self._receive_batch()
                backoff = 0.25
            except (BotoCoreError, ClientError) as exc:
                log.warning(
                    "%s: receive failed (%s), retrying in %.2fs", self.config.function_name, exc, backoff
                )
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if messages:
                self.run_batch(messages)

    def _receive_batch(self) -> list[dict[str, Any]]:
        wanted = self.config.batch_size
        messages: list[dict[str, Any]] = []
        window_end: float | None = None
        while len(messages) < wanted and not self._stopping.is_set():
            wait = RECEIVE_WAIT_SECONDS
            if window_end is not None:
                remaining = window_end - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(wait, max(0, int(remaining)))
            response = self.client.receive_message(
                QueueUrl=self.config.queue_url,
                MaxNumberOfMessages=min(10, wanted - len(messages)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            batch = response.get("Messages", [])
            messages.extend(batch)
            if messages and window_end is None:
                if self.config.max_batching_window <= 0:
                    break
                window_end = time.monotonic() + self.config.max_batching_window
            if not batch and messages:
                break
        return messages

    def run_batch(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [to_lambda_record(m, self.config.queue_url) for m in messages]}
        context = LambdaContext(self.config.function_name, self.config.timeout_seconds)
        try:
            result = self.handler(event, context)
        except Exception:
            log.exception("%s: handler raised; the batch stays for redelivery", self.config.function_name)
            return
        failures = failed_ids(result)
        done = [m for m in messages if m["MessageId"] not in failures]
        self._delete(done)

    def _delete(self, messages: list[dict[str, Any]]) -> int:
        deleted = 0
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            for attempt in range(3):
                try:
                    response = self.client.delete_message_batch(
                        QueueUrl=self.config.queue_url, Entries=entries
                    )
                    deleted += len(response.get("Successful", []))
                    break
                except (BotoCoreError, ClientError) as exc:
                    log.warning("%s: delete failed (%s)", self.config.function_name, exc)
                    self._stopping.wait(0.2 * (attempt + 1))
        return deleted
