"""The local SQS emulator (moto's app as `webhooks local` serves it) keeps every message
under concurrent calls, as SQS does.

These start their own emulator: they are about our launch of it, whatever SQS endpoint
the rest of the suite runs against.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from webhooks_cli.servers import start_sqs

from support import sqs_client_for


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    server = start_sqs()
    try:
        yield server.url
    finally:
        server.stop()


def _send(client: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        assert not client.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def _receive_all(client: Any, url: str, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    for _ in range(count):  # at most one round per message: a stuck queue fails, not hangs
        if len(got) >= count:
            break
        got += client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
    return got


def _counts(client: Any, url: str) -> tuple[int, int]:
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_deletes_racing_sends_neither_lose_nor_bring_back_messages(emulator: str) -> None:
    """moto rebuilds its message list on delete without the lock sends take: a send could
    vanish, and of two deletes at once the second could put the first's message back."""
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="race", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    first = [f"old-{n}" for n in range(2000)]
    _send(client, url, first)
    received = _receive_all(client, url, len(first))
    assert sorted(m["Body"] for m in received) == sorted(first)

    fresh = [f"new-{n}" for n in range(1000)]
    chunks = [received[n : n + 10] for n in range(0, len(received), 10)]
    failures: list[Any] = []

    def delete(part: list[list[dict[str, Any]]]) -> None:
        own = sqs_client_for(emulator)
        for chunk in part:
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            failures.extend(own.delete_message_batch(QueueUrl=url, Entries=entries).get("Failed", []))

    def send(part: list[str]) -> None:
        _send(sqs_client_for(emulator), url, part)

    threads = [threading.Thread(target=delete, args=(chunks[n::8],)) for n in range(8)]
    threads += [threading.Thread(target=send, args=(fresh[n::4],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert failures == []
    assert _counts(client, url) == (len(fresh), 0)  # every new one there, no deleted one in flight
    assert sorted(m["Body"] for m in _receive_all(client, url, len(fresh))) == sorted(fresh)


def test_queue_attributes_count_visible_in_flight_and_delayed(emulator: str) -> None:
    """The emulator counts these in one pass (moto's way read the clock per message)."""
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="counts", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    _send(client, url, [f"m{n}" for n in range(5)])
    client.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert len(client.receive_message(QueueUrl=url, MaxNumberOfMessages=2).get("Messages", [])) == 2
    attributes = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "3"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "2"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"


def test_receipt_handles_and_request_ids_are_fresh_per_receive_and_call(emulator: str) -> None:
    """Our launch draws them from os.urandom instead of moto's letter-at-a-time loop: each
    receive still gets a new handle, the previous one still deletes, request ids differ."""
    client = sqs_client_for(emulator)
    url = client.create_queue(QueueName="handles", Attributes={"VisibilityTimeout": "0"})["QueueUrl"]
    client.send_message(QueueUrl=url, MessageBody="one")
    seen = []
    for _ in range(3):
        reply = client.receive_message(QueueUrl=url, WaitTimeSeconds=1)
        [message] = reply["Messages"]
        seen.append((message["ReceiptHandle"], reply["ResponseMetadata"]["RequestId"]))
    handles, request_ids = zip(*seen, strict=True)
    assert len(set(handles)) == 3 and all(len(h) == 185 and h.isalpha() and h.islower() for h in handles)
    assert len(set(request_ids)) == 3 and all(len(r) == 52 and r.isalnum() for r in request_ids)
    client.delete_message(QueueUrl=url, ReceiptHandle=handles[0])  # an older handle of the message
    assert client.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
