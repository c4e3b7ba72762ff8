"""The deliver handler against moto's SQS server, SecantusDB and real HTTP receivers."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from webhooks.models import DeliveryMessage
from webhooks_cli.lambdas import LambdaContext

from conftest import Delivery, Stack
from support import Reply, drain, receive, sqs_event


def make_partner(stack: Stack, url: str, events: list[str] | None = None) -> tuple[str, str]:
    created = stack.store().create(f"p-{url}", url, events or ["order.created"])
    return created.partner.id, created.secret_key


def retried(delivery: Delivery, result: dict[str, Any], messages: list[dict[str, Any]]) -> DeliveryMessage:
    """A failed attempt with attempts left: the original acknowledged, and a copy carrying
    the attempt back on the queue after its backoff."""
    assert result == {"batchItemFailures": []}
    delivery.delete(result, messages)
    [copy] = receive(delivery.stack.sqs, delivery.queue, 1, timeout=4)
    message = DeliveryMessage.model_validate_json(copy["Body"])
    assert message.priorAttempts == 1
    return message


def test_a_delivery_is_signed_both_ways_and_verifiable(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    receiver = receiver_factory()
    partner_id, secret = make_partner(stack, receiver.url)
    event = delivery.enqueue(partner_id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}
    [got] = receiver.wait_for(1)
    assert (
        got.body
        == json.dumps(
            {
                "eventId": event.eventId,
                "eventType": "order.created",
                "timestamp": event.timestamp,
                "data": event.data,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
    )
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["X-Recart-Event-Id"] == got.headers["webhook-id"] == event.eventId
    assert got.headers["X-Recart-Event-Type"] == "order.created"
    expected = hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["X-Recart-Signature-256"], expected)
    assert Webhook(secret).verify(got.body, got.headers)["eventId"] == event.eventId


def test_during_rotation_both_secrets_verify(stack: Stack, delivery: Delivery, receiver_factory: Any) -> None:
    receiver = receiver_factory()
    partner_id, old = make_partner(stack, receiver.url)
    new = stack.store().rotate_secret(partner_id, timedelta(hours=24))
    delivery.enqueue(partner_id)
    delivery.run()
    [got] = receiver.wait_for(1)
    Webhook(old).verify(got.body, got.headers)
    Webhook(new).verify(got.body, got.headers)
    assert hmac.compare_digest(
        got.headers["X-Recart-Signature-256"], hmac.new(new.encode(), got.body, hashlib.sha256).hexdigest()
    )


def test_failing_twice_then_succeeding_takes_three_attempts_on_the_backoff_schedule(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    receiver = receiver_factory([Reply(500), Reply(503), Reply(200)])
    partner_id, _ = make_partner(stack, receiver.url)
    delivery.enqueue(partner_id)
    reappeared = []
    for attempt in (1, 2, 3):
        result, messages = delivery.run(timeout=6)
        reappeared.append(time.monotonic())
        # each retry is a new copy carrying the attempts made: its receive count is not one
        assert messages[0]["Attributes"]["ApproximateReceiveCount"] == "1"
        assert DeliveryMessage.model_validate_json(messages[0]["Body"]).priorAttempts == attempt - 1
        assert result == {"batchItemFailures": []}  # the original acknowledged every time
        delivery.delete(result, messages)
    assert [r.headers["webhook-id"] for r in receiver.requests] == [
        receiver.requests[0].headers["webhook-id"]
    ] * 3
    # WEBHOOK_RETRY_DELAY=1000: visibility 1 s after attempt 1, 2 s after attempt 2
    gap1, gap2 = reappeared[1] - reappeared[0], reappeared[2] - reappeared[1]
    assert 0.9 <= gap1 < 2.6, gap1  # 1 s visibility, + up to one of moto's 1 s long-poll turns
    assert 1.9 <= gap2 < 3.6, gap2  # 2 s
    assert drain(stack.sqs, delivery.queue) == []
    assert drain(stack.sqs, stack.url("DELIVERY_DLQ_URL")) == []


def test_an_always_failing_endpoint_ends_in_the_dlq_with_the_reason(
    stack: Stack, delivery: Delivery, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch, function: Any
) -> None:
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "2")
    delivery = Delivery(stack, function("deliver"))
    receiver = receiver_factory([Reply(500, body=b"database exploded")])
    partner_id, _ = make_partner(stack, receiver.url)
    event = delivery.enqueue(partner_id)
    for _ in range(2):
        result, messages = delivery.run(timeout=6)
        delivery.delete(result, messages)
    assert result == {"batchItemFailures": []}  # the last attempt leaves the main queue...
    dead = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))  # ...for the DLQ
    assert len(dead) == 1
    attrs = {k: v["StringValue"] for k, v in dead[0]["MessageAttributes"].items()}
    assert attrs == {
        "partnerId": partner_id,
        "endpointId": f"ep_{partner_id}",  # the partner's first endpoint
        "eventId": event.eventId,
        "eventType": "order.created",
        "attempts": "2",
        "lastStatus": "500",
        "lastError": "HTTP 500",
    }
    assert DeliveryMessage.model_validate_json(dead[0]["Body"]).event == event
    assert drain(stack.sqs, delivery.queue) == []
    assert len(receiver.requests) == 2


def test_410_gone_is_dead_lettered_at_once(stack: Stack, delivery: Delivery, receiver_factory: Any) -> None:
    receiver = receiver_factory([Reply(410)])
    partner_id, _ = make_partner(stack, receiver.url)
    delivery.enqueue(partner_id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}
    dead = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    assert dead[0]["MessageAttributes"]["lastStatus"]["StringValue"] == "410"
    assert dead[0]["MessageAttributes"]["attempts"]["StringValue"] == "1"


def test_retry_after_on_429_lengthens_the_wait(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    receiver = receiver_factory([Reply(429, headers={"Retry-After": "3"}), Reply(200)])
    partner_id, _ = make_partner(stack, receiver.url)
    delivery.enqueue(partner_id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}
    delivery.delete(result, messages)
    start = time.monotonic()
    # not back within 2 s (receive's timeout bounds when its last 1 s long poll starts)
    assert receive(stack.sqs, delivery.queue, 1, timeout=1.1) == []
    assert len(receive(stack.sqs, delivery.queue, 1, timeout=4)) == 1
    assert time.monotonic() - start >= 2.5


def test_a_hanging_receiver_is_cut_at_the_timeout(
    stack: Stack, receiver_factory: Any, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_TIMEOUT", "500")
    delivery = Delivery(stack, function("deliver"))
    receiver = receiver_factory([Reply(200, delay=3)])
    partner_id, _ = make_partner(stack, receiver.url)
    delivery.enqueue(partner_id)
    started = time.monotonic()
    result, messages = delivery.run()
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, elapsed
    retried(delivery, result, messages)


def test_a_redirect_is_not_followed(stack: Stack, delivery: Delivery, receiver_factory: Any) -> None:
    target = receiver_factory()
    redirecting = receiver_factory([Reply(302, headers={"Location": target.url})])
    partner_id, _ = make_partner(stack, redirecting.url)
    delivery.enqueue(partner_id)
    result, messages = delivery.run()
    retried(delivery, result, messages)
    assert len(redirecting.requests) == 1
    assert target.requests == []


def test_a_refused_connection_is_retried(stack: Stack, delivery: Delivery) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    partner_id, _ = make_partner(stack, f"http://127.0.0.1:{port}/hook")
    delivery.enqueue(partner_id)
    result, messages = delivery.run()
    retried(delivery, result, messages)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:{port}/hook",
        "http://[::ffff:127.0.0.1]:{port}/hook",
        "http://localhost:{port}/hook",
        "ftp://example.com/hook",
    ],
)
def test_ssrf_targets_are_refused_when_the_guard_is_on(
    stack: Stack,
    receiver_factory: Any,
    function: Any,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_DESTINATIONS", "false")
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "1")
    delivery = Delivery(stack, function("deliver"))
    receiver = receiver_factory()
    partner_id, _ = make_partner(stack, url.format(port=receiver.port))
    delivery.enqueue(partner_id)
    result, _ = delivery.run()
    assert result == {"batchItemFailures": []}
    assert receiver.requests == []  # nothing reached the loopback receiver
    dead = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    assert dead[0]["MessageAttributes"]["lastError"]["StringValue"].startswith("destination refused")


def test_one_partner_failing_never_duplicates_another_partners_delivery(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    healthy = receiver_factory()
    broken = receiver_factory([Reply(500)])
    healthy_id, _ = make_partner(stack, healthy.url)
    broken_id, _ = make_partner(stack, broken.url)
    events = [delivery.enqueue(pid) for pid in (healthy_id, broken_id) for _ in range(3)]
    # run whatever SQS hands back (as the event source would) while the broken partner retries
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(broken.requests) < 6:
        messages = receive(stack.sqs, delivery.queue, 10, timeout=1)
        if messages:
            result = delivery.handler(sqs_event(messages, delivery.queue))
            delivery.delete(result, messages)
    assert sorted(healthy.event_ids()) == sorted(e.eventId for e in events[:3])  # each exactly once
    assert len(broken.requests) >= 6


def test_a_deactivated_partner_is_dropped(stack: Stack, delivery: Delivery, receiver_factory: Any) -> None:
    receiver = receiver_factory()
    partner_id, _ = make_partner(stack, receiver.url)
    stack.store().set_active(partner_id, False)
    delivery.enqueue(partner_id)
    result, _ = delivery.run()
    assert result == {"batchItemFailures": []}
    assert receiver.requests == []
    assert drain(stack.sqs, stack.url("DELIVERY_DLQ_URL")) == []


def test_a_malformed_delivery_message_is_dead_lettered(stack: Stack, delivery: Delivery) -> None:
    stack.sqs.send_message(QueueUrl=delivery.queue, MessageBody='{"version": 9}')
    result, _ = delivery.run()
    assert result == {"batchItemFailures": []}
    dead = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    assert dead[0]["MessageAttributes"]["lastError"]["StringValue"].startswith("malformed delivery message")


def test_a_batch_runs_concurrently(stack: Stack, delivery: Delivery, receiver_factory: Any) -> None:
    in_flight = []
    lock = threading.Lock()
    receiver = receiver_factory([Reply(200, delay=0.3)])
    original = receiver._record

    def counting(received: Any) -> Reply:
        with lock:
            in_flight.append(sum(1 for r in receiver.requests if time.time() - r.at < 0.25) + 1)
        reply: Reply = original(received)
        return reply

    receiver._record = counting  # type: ignore[method-assign]
    partner_id, _ = make_partner(stack, receiver.url)
    for _ in range(5):
        delivery.enqueue(partner_id)
    result, _ = delivery.run(count=5)
    assert result == {"batchItemFailures": []}
    assert max(in_flight) >= 3  # WORKER_CONCURRENCY=5: several POSTs were open at once


def test_secrets_and_bodies_never_reach_the_logs(
    stack: Stack,
    delivery: Delivery,
    receiver_factory: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    receiver = receiver_factory([Reply(500)])
    partner_id, secret = make_partner(stack, receiver.url)
    delivery.enqueue(partner_id, data={"creditCard": "4111-1111-1111-1111"})
    delivery.run()
    logged = caplog.text + capfd.readouterr().out
    assert "delivery attempt" in logged
    assert secret not in logged and secret[6:] not in logged
    assert "4111-1111" not in logged


def test_a_partner_deactivated_mid_retry_gets_no_more_attempts(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    receiver = receiver_factory([Reply(500)])
    partner_id, _ = make_partner(stack, receiver.url)
    delivery.enqueue(partner_id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}  # attempt 1 failed, its retry re-sent
    delivery.delete(result, messages)
    stack.store().set_active(partner_id, False)
    result, messages = delivery.run(timeout=4)  # attempt 2 comes back after 1 s...
    assert result == {"batchItemFailures": []}  # ...and is dropped
    delivery.delete(result, messages)
    assert len(receiver.requests) == 1
    assert drain(stack.sqs, delivery.queue) == [] and drain(stack.sqs, stack.url("DELIVERY_DLQ_URL")) == []


def test_partner_headers_are_sent_and_its_timeout_applies(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    slow = receiver_factory([Reply(200, delay=1.0)])
    partner_id, secret = make_partner(stack, slow.url)
    # written straight to the store: even a forbidden header cannot replace the platform's
    stack.store().update(
        partner_id,
        timeout_ms=300,
        headers={"Authorization": "Bearer t0ken", "X-Recart-Signature-256": "forged"},
    )
    delivery.enqueue(partner_id)
    started = time.monotonic()
    result, messages = delivery.run()
    assert time.monotonic() - started < 0.9  # cut at the partner's 300 ms, not WEBHOOK_TIMEOUT=2000
    retried(delivery, result, messages)
    [got] = slow.wait_for(1)
    assert got.headers["Authorization"] == "Bearer t0ken"
    expected = hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Recart-Signature-256"] == expected


def test_posts_that_cannot_finish_before_the_invocation_ends_are_put_back_unattempted(
    stack: Stack, function: Any, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow endpoint and little time left: what cannot start in time goes back, uncounted."""
    monkeypatch.setenv("WORKER_CONCURRENCY", "2")
    receiver = receiver_factory([Reply(delay=1.5)])
    partner_id, _ = make_partner(stack, receiver.url)
    stack.store().update(partner_id, timeout_ms=2000)
    delivery = Delivery(stack, function("deliver"))
    events = [delivery.enqueue(partner_id) for _ in range(4)]
    messages = receive(stack.sqs, delivery.queue, 4)
    assert len(messages) == 4
    # a POST needs its timeout (2 s) + 3 s to settle: with 6 s left the first two start at
    # once; when they end (1.5 s) the next two would end past the deadline
    result = delivery.handler(sqs_event(messages, delivery.queue), LambdaContext("deliver", 6.0))
    assert result == {"batchItemFailures": []}  # nothing for SQS to retry: all settled
    delivery.delete(result, messages)
    assert len(receiver.requests) == 2
    again = receive(stack.sqs, delivery.queue, 2)  # as the event source would hand them over
    put_back = [DeliveryMessage.model_validate_json(m["Body"]) for m in again]
    attempted = set(receiver.event_ids())
    assert {m.event.eventId for m in put_back} == {e.eventId for e in events} - attempted
    assert all(m.priorAttempts == 0 for m in put_back)  # their next attempt is their first
    logged = list(stack.db["deliveryAttempts"].find({"partnerId": partner_id}))
    assert sorted(d["eventId"] for d in logged) == sorted(attempted)
    # with time enough, they go out as attempt 1: every event exactly once
    assert delivery.handler(sqs_event(again, delivery.queue)) == {"batchItemFailures": []}
    assert sorted(receiver.event_ids()) == sorted(e.eventId for e in events)
    assert {d["attempt"] for d in stack.db["deliveryAttempts"].find({"partnerId": partner_id})} == {1}
