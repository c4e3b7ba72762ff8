"""Attempts are POSTs: counted in the message, never from SQS's receive count (moto's SQS
server, SecantusDB, real HTTP receivers that count what they get)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from webhooks.models import DeliveryMessage

from conftest import Delivery, Stack
from support import Reply, drain, receive, sqs_event


def make_partner(stack: Stack, url: str) -> str:
    return stack.store().create(f"p-{url}", url, ["order.created"]).partner.id


def attributes(message: dict[str, Any]) -> dict[str, str]:
    return {k: v["StringValue"] for k, v in message["MessageAttributes"].items()}


class LostReceives:
    """Receives that never reach a POST: an invocation that dies before it (here: while it
    reads partner changes, as an init failure or a MongoDB outage would) and one that is never
    invoked at all (throttled). Each ends as SQS ends it: the message visible again."""

    def __init__(self, stack: Stack, delivery: Delivery, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack, self.delivery = stack, delivery
        self.dying = False
        store = sys.modules["webhooks_function_deliver"].deliverer.store
        real_sync = store.sync

        def sync() -> None:
            if self.dying:
                raise RuntimeError("invocation died before the POST")
            real_sync()

        monkeypatch.setattr(store, "sync", sync)

    def lose(self, died: int = 1, throttled: int = 1) -> None:
        for dies in [True] * died + [False] * throttled:
            [message] = receive(self.stack.sqs, self.delivery.queue, 1, timeout=6)
            if dies:
                self.dying = True
                try:
                    with pytest.raises(RuntimeError):
                        self.delivery.handler(sqs_event([message], self.delivery.queue))
                finally:
                    self.dying = False
            self.stack.sqs.change_message_visibility(
                QueueUrl=self.delivery.queue, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )


@pytest.fixture
def failing_three_times(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[Delivery, LostReceives]:
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "3")
    delivery = Delivery(stack, function("deliver"))
    return delivery, LostReceives(stack, delivery, monkeypatch)


def test_a_failing_delivery_is_dead_lettered_after_exactly_max_attempts_posts_whatever_receives_were_lost(
    stack: Stack, failing_three_times: tuple[Delivery, LostReceives], receiver_factory: Any
) -> None:
    delivery, lost = failing_three_times
    receiver = receiver_factory([Reply(500)])
    partner_id = make_partner(stack, receiver.url)
    event = delivery.enqueue(partner_id)
    for attempt in (1, 2, 3):
        lost.lose(died=1, throttled=1)  # two receives of this copy, no POST: no attempt spent
        assert len(receiver.requests) == attempt - 1
        result, messages = delivery.run(timeout=6)
        assert messages[0]["Attributes"]["ApproximateReceiveCount"] == "3"
        assert result == {"batchItemFailures": []}
        delivery.delete(result, messages)
        assert len(receiver.requests) == attempt
    [dead] = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    assert attributes(dead) == {
        "partnerId": partner_id,
        "endpointId": f"ep_{partner_id}",  # the partner's first endpoint
        "eventId": event.eventId,
        "eventType": "order.created",
        "attempts": "3",
        "lastStatus": "500",
        "lastError": "HTTP 500",
    }
    # the dead letter is the delivery itself, without what its trip carried: a redrive
    # starts it over with a full set of attempts
    letter = DeliveryMessage.model_validate_json(dead["Body"])
    assert (letter.event, letter.priorAttempts, letter.hops, letter.notBefore) == (event, 0, 0, None)
    assert drain(stack.sqs, delivery.queue) == []
    logged = stack.db["deliveryAttempts"].find({"partnerId": partner_id})
    assert sorted(d["attempt"] for d in logged) == [1, 2, 3]


def test_a_copy_received_too_often_without_an_attempt_is_dead_lettered_with_the_reason(
    stack: Stack, failing_three_times: tuple[Delivery, LostReceives], receiver_factory: Any
) -> None:
    delivery, lost = failing_three_times
    receiver = receiver_factory()
    partner_id = make_partner(stack, receiver.url)
    delivery.enqueue(partner_id)
    lost.lose(died=3, throttled=2)  # the bound: 5 receives without an attempt
    result, messages = delivery.run(timeout=6)
    assert messages[0]["Attributes"]["ApproximateReceiveCount"] == "6"
    assert result == {"batchItemFailures": []}
    delivery.delete(result, messages)
    assert receiver.requests == []
    [dead] = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    assert attributes(dead)["attempts"] == "0"
    assert attributes(dead)["lastError"].startswith("received 6 times without an attempt completing")


def test_a_retry_carries_its_attempts_hops_and_acceptance_time(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    receiver = receiver_factory([Reply(503)])
    partner_id = make_partner(stack, receiver.url)
    delivery.enqueue(partner_id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}
    delivery.delete(result, messages)
    [back] = receive(stack.sqs, delivery.queue, 1, timeout=4)
    copy = DeliveryMessage.model_validate_json(back["Body"])
    accepted = int(messages[0]["Attributes"]["SentTimestamp"]) / 1000
    assert (copy.priorAttempts, copy.hops, copy.acceptedAt) == (1, 1, accepted)
    # WEBHOOK_RETRY_DELAY=1000: due 1 s after the attempt, sent with that DelaySeconds
    assert copy.notBefore is not None and 0 < copy.notBefore - accepted < 1 + 5
    assert int(back["Attributes"]["SentTimestamp"]) / 1000 + 1 >= copy.notBefore - 0.01


def test_a_retry_after_that_is_not_ascii_digits_is_ignored_and_the_attempt_retried_on_the_backoff(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    # "\xb2" is Latin-1 "²": str.isdigit() says yes, float() raises
    receiver = receiver_factory([Reply(429, headers={"Retry-After": "\xb2"}), Reply(200)])
    partner_id = make_partner(stack, receiver.url)
    event = delivery.enqueue(partner_id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}  # decided, not an exception SQS retries blindly
    delivery.delete(result, messages)
    [logged] = stack.db["deliveryAttempts"].find({"partnerId": partner_id})
    assert (logged["attempt"], logged["statusCode"], logged["outcome"]) == (1, 429, "retry")
    [back] = receive(stack.sqs, delivery.queue, 1, timeout=4)
    copy = DeliveryMessage.model_validate_json(back["Body"])
    sent = int(messages[0]["Attributes"]["SentTimestamp"]) / 1000
    assert copy.priorAttempts == 1 and copy.event == event
    assert copy.notBefore is not None and copy.notBefore - sent < 1 + 5  # the 1 s backoff


def test_a_decision_that_raises_still_ends_the_attempt_logged_counted_and_decided(
    stack: Stack, function: Any, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webhooks.delivery.deliverer as deliver_module

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("decision failed")

    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "2")
    delivery = Delivery(stack, function("deliver"))
    monkeypatch.setattr(deliver_module, "decide", broken)
    receiver = receiver_factory([Reply(500)])
    partner_id = make_partner(stack, receiver.url)
    delivery.enqueue(partner_id)
    for _ in range(2):
        result, messages = delivery.run(timeout=6)
        assert result == {"batchItemFailures": []}
        delivery.delete(result, messages)
    assert len(receiver.requests) == 2
    logged = list(stack.db["deliveryAttempts"].find({"partnerId": partner_id}))
    assert sorted((d["attempt"], d["outcome"]) for d in logged) == [(1, "retry"), (2, "dead_lettered")]
    [dead] = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    assert attributes(dead)["attempts"] == "2"
    assert drain(stack.sqs, delivery.queue) == []
