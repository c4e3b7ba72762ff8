"""Delivery per endpoint, against moto's SQS server, SecantusDB and real receivers: one partner
with two endpoints, each with its own URL, secret, headers, pause, health, parking, log rows and
dead letters; and the operational events a partner gets about them (message.attempt.exhausted,
endpoint.failing, endpoint.disabled), only about itself and never about themselves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.delivery.parked import ParkedDeliveries
from webhooks.delivery.signing import verify_recart_signature, verify_standard_signature
from webhooks.endpoints.model import Endpoint, first_endpoint_id
from webhooks.endpoints.store import EndpointStore
from webhooks.models import DeliveryMessage, Event, new_event_id, utc_timestamp

from conftest import Delivery, Stack
from support import Receiver, Reply, drain, receive, sqs_event


def endpoints(stack: Stack) -> EndpointStore:
    return EndpointStore(stack.db, stack.store())


def two_endpoints(
    stack: Stack, first: Receiver, second: Receiver, second_events: list[str] | None = None
) -> tuple[str, Endpoint, str]:
    """A partner whose first endpoint is ``first`` and another endpoint ``second`` (with a
    header of its own): (partner id, the second endpoint, its secret)."""
    store = stack.store()
    partner_id = store.create(f"two-{new_event_id()}", first.url, ["order.created"]).partner.id
    store.update(partner_id, headers={"X-Which": "first"})
    second_endpoint, secret = endpoints(stack).create(
        partner_id,
        {"url": second.url, "headers": {"X-Which": "second", "X-Tenant": "t-2"}},
        second_events or [],
    )
    return partner_id, second_endpoint, secret


def run_all(delivery: Delivery, count: int, timeout: float = 6) -> dict[str, Any]:
    result, messages = delivery.run(count, timeout=timeout)
    delivery.delete(result, messages)
    return result


def events_published(stack: Stack) -> list[dict[str, Any]]:
    return [
        e
        for m in drain(stack.sqs, stack.url("EVENTS_QUEUE_URL"), wait=1)
        for e in json.loads(m["Body"])["events"]
    ]


def test_a_second_endpoint_is_signed_with_its_own_secret_and_gets_its_own_headers(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    first, second = receiver_factory(), receiver_factory()
    partner_id, endpoint, secret = two_endpoints(stack, first, second)
    partner_secret = stack.store().get(partner_id).secret_key
    event = delivery.enqueue(partner_id, endpoint_id=endpoint.id)
    delivery.enqueue(partner_id, event=event)  # the same event to the first endpoint
    assert run_all(delivery, 2) == {"batchItemFailures": []}

    [to_second], [to_first] = second.requests, first.requests
    assert to_second.body == to_first.body  # the same webhook body
    assert verify_recart_signature(to_second.body, secret, to_second.headers["X-Recart-Signature-256"])
    assert verify_standard_signature(to_second.body, to_second.headers, secret)
    assert not verify_standard_signature(to_second.body, to_second.headers, partner_secret)
    assert verify_standard_signature(to_first.body, to_first.headers, partner_secret)
    assert (to_second.headers["X-Which"], to_second.headers["X-Tenant"]) == ("second", "t-2")
    assert to_first.headers["X-Which"] == "first" and "X-Tenant" not in to_first.headers


def test_a_failing_endpoint_never_delays_or_duplicates_another_endpoint_of_the_same_partner(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    healthy, failing = receiver_factory(), receiver_factory([Reply(500)])
    partner_id, endpoint, _ = two_endpoints(stack, healthy, failing)
    events = [delivery.enqueue(partner_id) for _ in range(3)]
    for event in events:
        delivery.enqueue(partner_id, endpoint_id=endpoint.id, event=event)
    assert run_all(delivery, 6) == {"batchItemFailures": []}
    assert sorted(healthy.event_ids()) == sorted(e.eventId for e in events)  # all at once
    for _ in range(2):  # the failing endpoint's retries (WEBHOOK_MAX_ATTEMPTS=3), then its DLQ
        assert run_all(delivery, 3, timeout=8) == {"batchItemFailures": []}
    assert len(healthy.requests) == 3 and len(failing.requests) == 9  # never a second copy
    assert drain(stack.sqs, delivery.queue) == []

    letters = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    assert len(letters) == 3
    for letter in letters:
        attrs = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
        assert attrs["endpointId"] == endpoint.id and attrs["attempts"] == "3"
        assert DeliveryMessage.model_validate_json(letter["Body"]).endpointId == endpoint.id
    logged = list(stack.db["deliveryAttempts"].find({"partnerId": partner_id}))
    by_endpoint = {(d["endpointId"], d["outcome"]) for d in logged}
    assert by_endpoint == {
        (first_endpoint_id(partner_id), "delivered"),
        (endpoint.id, "retry"),
        (endpoint.id, "dead_lettered"),
    }
    # health is the failing endpoint's own; the healthy first endpoint has no streak
    assert endpoints(stack).get(partner_id, endpoint.id).consecutive_failures == 9
    assert stack.store().get(partner_id).consecutive_failures == 0


def test_a_429_on_one_endpoint_pauses_that_endpoint_only(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    healthy, slow = receiver_factory(), receiver_factory([Reply(429, headers={"Retry-After": "120"})])
    partner_id, endpoint, _ = two_endpoints(stack, healthy, slow)
    delivery.enqueue(partner_id, endpoint_id=endpoint.id)
    assert run_all(delivery, 1) == {"batchItemFailures": []}
    paused = endpoints(stack).get(partner_id, endpoint.id).paused_for()
    assert 100 < paused <= 120
    assert stack.store().get(partner_id).paused_for() == 0  # the partner's first endpoint goes on

    to_first = delivery.enqueue(partner_id)
    held = delivery.enqueue(partner_id, endpoint_id=endpoint.id)
    result, messages = delivery.run(2)
    assert result == {"batchItemFailures": []}
    delivery.delete(result, messages)
    # the paused endpoint's new delivery waits, unattempted, for the end of the pause
    assert healthy.event_ids() == [to_first.eventId] and len(slow.requests) == 1
    assert held.eventId not in slow.event_ids()
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=delivery.queue, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "2"  # it and the 429's retry


def test_a_failing_endpoint_is_disabled_and_parked_alone_and_its_partner_is_told(
    stack: Stack, function: Any, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENDPOINT_DISABLE_AFTER_FAILURES", "3")
    monkeypatch.setenv("ENDPOINT_DISABLE_AFTER_SECONDS", "0")
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "10")
    monkeypatch.setenv("WEBHOOK_RETRY_DELAY", "600000")  # retries stay out of the way
    delivery = Delivery(stack, function("deliver"))
    healthy, failing = receiver_factory(), receiver_factory([Reply(500)])
    partner_id, endpoint, _ = two_endpoints(stack, healthy, failing)
    delivery.enqueue(partner_id, endpoint_id=endpoint.id)
    assert run_all(delivery, 1) == {"batchItemFailures": []}
    assert events_published(stack) == []  # a streak of 1: below half of 3 (2)
    delivery.enqueue(partner_id, endpoint_id=endpoint.id)
    run_all(delivery, 1)  # the new one (the first waits out its backoff): a streak of 2
    [failing_event] = events_published(stack)
    assert failing_event["eventType"] == "endpoint.failing"
    assert failing_event["data"] == {
        "partnerId": partner_id,
        "endpointId": endpoint.id,
        "consecutiveFailures": 2,
        "failingSince": failing_event["data"]["failingSince"],
        "lastError": "HTTP 500",
    }
    delivery.enqueue(partner_id, endpoint_id=endpoint.id)
    run_all(delivery, 1)  # a streak of 3: disabled, and no second endpoint.failing
    [disabled_event] = events_published(stack)
    assert disabled_event["eventType"] == "endpoint.disabled"
    assert disabled_event["data"]["endpointId"] == endpoint.id
    assert disabled_event["data"]["partnerId"] == partner_id
    assert endpoints(stack).get(partner_id, endpoint.id).endpoint_disabled
    assert not stack.store().get(partner_id).endpoint_disabled  # the first endpoint is not

    # from now on: the disabled endpoint's deliveries are parked, the first endpoint's go out
    parked_event = delivery.enqueue(partner_id, endpoint_id=endpoint.id)
    to_first = delivery.enqueue(partner_id)
    run_all(delivery, 2)
    assert healthy.event_ids() == [to_first.eventId] and len(failing.requests) == 3
    parked = ParkedDeliveries(stack.db)
    assert parked.count(partner_id, endpoint.id) == 1 and parked.count(partner_id) == 0
    [(key, message)] = list(parked.oldest(partner_id, endpoint.id, 10))
    assert (message.event.eventId, message.endpointId) == (parked_event.eventId, endpoint.id)
    [doc] = stack.db["parkedDeliveries"].find()
    assert doc["_id"] == key == f"{partner_id}:{endpoint.id}:{parked_event.eventId}"
    assert doc["endpointId"] == endpoint.id


def test_a_first_endpoint_parks_as_before_endpoints_so_older_parked_deliveries_still_unpark(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    receiver = receiver_factory()
    partner_id = stack.store().create("older", receiver.url, ["order.created"]).partner.id
    # what an earlier version parked: no endpointId, the key partnerId:eventId
    old = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
    stack.db["parkedDeliveries"].insert_one(
        {
            "_id": f"{partner_id}:{old.eventId}",
            "partnerId": partner_id,
            "event": old.model_dump(),
            "parkedAt": datetime.now(UTC) - timedelta(minutes=5),
        }
    )
    assert stack.store().disable_endpoint(partner_id, "test")
    new = delivery.enqueue(partner_id)
    run_all(delivery, 1)
    [doc] = stack.db["parkedDeliveries"].find({"event.eventId": new.eventId})
    assert doc["_id"] == f"{partner_id}:{new.eventId}" and "endpointId" not in doc
    parked = ParkedDeliveries(stack.db)
    assert parked.count(partner_id) == parked.count(partner_id, first_endpoint_id(partner_id)) == 2
    found = list(parked.oldest(partner_id, first_endpoint_id(partner_id), 10))
    assert [(m.event.eventId, m.endpointId) for _, m in found] == [(old.eventId, None), (new.eventId, None)]
    assert receiver.requests == []


def dispatch_all(stack: Stack, function: Any) -> None:
    """Run the dispatch handler on whatever the events queue holds."""
    messages = receive(stack.sqs, stack.url("EVENTS_QUEUE_URL"), 1, timeout=5)
    assert messages, "nothing published to the events queue"
    result = function("dispatch")(sqs_event(messages, stack.url("EVENTS_QUEUE_URL")))
    assert result == {"batchItemFailures": []}
    for m in messages:
        stack.sqs.delete_message(QueueUrl=stack.url("EVENTS_QUEUE_URL"), ReceiptHandle=m["ReceiptHandle"])


def test_an_exhausted_delivery_is_announced_to_the_subscribed_endpoint_of_its_partner_only(
    stack: Stack, delivery: Delivery, function: Any, receiver_factory: Any
) -> None:
    gone, watcher, other_tenant = receiver_factory([Reply(410)]), receiver_factory(), receiver_factory()
    # the partner's second endpoint watches its deliveries; another tenant asks for them too
    partner_id, watching, _ = two_endpoints(stack, gone, watcher, ["message.attempt.*"])
    stack.store().create("nosy", other_tenant.url, ["message.attempt.exhausted", "*"])
    event = delivery.enqueue(partner_id)
    assert run_all(delivery, 1) == {"batchItemFailures": []}  # 410: dead-lettered at once
    assert len(drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))) == 1

    dispatch_all(stack, function)
    assert run_all(delivery, 1) == {"batchItemFailures": []}  # one delivery: to the watcher
    [told] = watcher.requests
    body = told.json()
    assert body["eventType"] == "message.attempt.exhausted"
    assert body["data"] == {
        "eventId": event.eventId,
        "eventType": "order.created",
        "partnerId": partner_id,
        "endpointId": first_endpoint_id(partner_id),
        "attempts": 1,
        "lastStatus": 410,
    }
    assert other_tenant.requests == [] and len(gone.requests) == 1
    assert drain(stack.sqs, delivery.queue) == []
    # and the delivery log knows which endpoint got it
    [logged] = stack.db["deliveryAttempts"].find({"eventType": "message.attempt.exhausted"})
    assert logged["endpointId"] == watching.id


@pytest.mark.parametrize("event_type", ["message.attempt.exhausted", "endpoint.disabled"])
def test_the_failed_delivery_of_an_operational_event_is_never_announced(
    stack: Stack, delivery: Delivery, receiver_factory: Any, event_type: str
) -> None:
    gone = receiver_factory([Reply(410)])
    partner_id = stack.store().create("loop", gone.url, [event_type, "order.created"]).partner.id
    about = {"partnerId": partner_id, "endpointId": first_endpoint_id(partner_id)}
    delivery.enqueue(partner_id, event_type, about)
    delivery.enqueue(partner_id, "order.created")  # for contrast: this one is announced
    assert run_all(delivery, 2) == {"batchItemFailures": []}
    assert len(gone.requests) == 2 and len(drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))) == 2
    published = events_published(stack)
    assert [(e["eventType"], e["data"]["eventType"]) for e in published] == [
        ("message.attempt.exhausted", "order.created")
    ]
