"""The local event source mapping: what it deletes, what it leaves for redelivery."""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from webhooks_cli.poller import Poller, PollerConfig

from support import receive, sqs_client_for, wait_until


@pytest.fixture
def queue(sqs: Any) -> Any:
    url = sqs.create_queue(QueueName=f"poller-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "1"})[
        "QueueUrl"
    ]
    yield url
    sqs.delete_queue(QueueUrl=url)


def run_poller(sqs: Any, queue: str, handler: Any, **config: Any) -> Poller:
    poller = Poller(sqs, handler, PollerConfig(function_name="test", queue_url=queue, **config))
    poller.start()
    return poller


def test_records_have_the_lambda_shape(sqs: Any, queue: str) -> None:
    seen: list[dict[str, Any]] = []
    sqs.send_message(
        QueueUrl=queue,
        MessageBody="hello",
        MessageAttributes={"partnerId": {"DataType": "String", "StringValue": "p1"}},
    )

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.extend(event["Records"])
        return {"batchItemFailures": []}

    poller = run_poller(sqs, queue, handler)
    try:
        wait_until(lambda: seen, timeout=5)
    finally:
        poller.stop()
    record = seen[0]
    assert record["body"] == "hello" and record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(queue.rsplit("/", 1)[-1])
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["partnerId"]["stringValue"] == "p1"
    assert {"messageId", "receiptHandle", "md5OfBody", "awsRegion"} <= set(record)


def test_partial_failures_delete_only_the_successes(sqs: Any, queue: str) -> None:
    for body in ("ok-1", "fail", "ok-2"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    calls: list[list[str]] = []
    lock = threading.Lock()

    def handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        with lock:
            calls.append([r["body"] for r in event["Records"]])
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"
            ]
        }

    poller = run_poller(sqs, queue, handler, batch_size=10, max_batching_window=0.5)
    try:
        # the successes too, not only the failure's return: each is asserted below
        wait_until(
            lambda: (
                (seen := [b for c in calls for b in c]).count("fail") >= 2 and {"ok-1", "ok-2"} <= set(seen)
            ),
            timeout=8,
        )
    finally:
        poller.stop()
    seen = [b for c in calls for b in c]
    assert seen.count("ok-1") == 1 and seen.count("ok-2") == 1  # deleted after success
    assert seen.count("fail") >= 2  # came back after the visibility timeout


def test_a_handler_exception_leaves_the_whole_batch(sqs: Any, queue: str) -> None:
    for body in ("a", "b"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    calls: list[list[str]] = []

    def handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        calls.append(sorted(r["body"] for r in event["Records"]))
        if len(calls) == 1:
            raise RuntimeError("crash mid-batch")
        return {"batchItemFailures": []}

    poller = run_poller(sqs, queue, handler, batch_size=10, max_batching_window=0.5)
    try:
        wait_until(lambda: sum(len(c) for c in calls) >= 4, timeout=8)
        time.sleep(1.5)
    finally:
        poller.stop()
    assert calls[0] == ["a", "b"]
    assert sorted(b for c in calls[1:] for b in c) == ["a", "b"]  # both again, then deleted, once
    assert receive(sqs, queue, 1, timeout=1.5) == []


def test_the_poller_survives_the_endpoint_going_away(sqs: Any, queue: str) -> None:

    dead = sqs_client_for("http://127.0.0.1:9")
    poller = Poller(dead, lambda e, c: {}, PollerConfig(function_name="t", queue_url=queue))
    poller.start()
    time.sleep(1.0)
    assert all(t.is_alive() for t in poller._threads)  # backing off, not crashed
    poller.stop(timeout=10)
    assert not any(t.is_alive() for t in poller._threads)


def test_no_receive_starts_after_a_stop_is_asked(sqs: Any, queue: str) -> None:
    """Every thread's long poll in flight when the stop comes: none starts another one after
    it returns, or stopping takes one more wait per thread."""
    started: list[float] = []
    stop_asked: list[float] = []

    class CountingClient:
        def receive_message(self, **kwargs: Any) -> Any:
            started.append(time.monotonic())
            return sqs.receive_message(**kwargs)

        def __getattr__(self, name: str) -> Any:
            return getattr(sqs, name)

    poller = Poller(
        CountingClient(), lambda e, c: {}, PollerConfig(function_name="t", queue_url=queue, concurrency=4)
    )
    poller.start()
    wait_until(lambda: len(started) >= 4, timeout=5)  # the four threads' receives in flight
    stop_asked.append(time.monotonic())
    poller.stop(timeout=10)
    assert not any(t.is_alive() for t in poller._threads)
    # at most one that was between two receives in the instant of the stop
    assert len([t for t in started if t > stop_asked[0]]) <= 1


def _thread_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.parametrize("increment", [0, 5])
def test_a_poller_runs_its_handler_and_the_threads_it_starts_at_lower_priority(
    sqs: Any, queue: str, increment: int
) -> None:
    seen: dict[str, int] = {}

    def handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        seen["handler"] = _thread_nice()
        with ThreadPoolExecutor(1) as pool:  # as the deliver handler's POST workers start
            seen["worker"] = pool.submit(_thread_nice).result()
        return {"batchItemFailures": []}

    base = _thread_nice()
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    poller = run_poller(sqs, queue, handler, nice=increment)
    try:
        wait_until(lambda: "worker" in seen)
    finally:
        poller.stop()
    assert seen == {"handler": min(19, base + increment), "worker": min(19, base + increment)}
    assert _thread_nice() == base  # the thread that started the poller keeps its priority
