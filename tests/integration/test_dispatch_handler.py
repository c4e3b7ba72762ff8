"""The dispatch handler: envelopes in, one delivery message per (event, subscribed partner) out."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from webhooks.delivery.health import Disabled
from webhooks.delivery.operational_events import announce
from webhooks.ingest.enqueue import accept_events, pack_envelopes
from webhooks.models import DeliveryMessage, EventEnvelope, EventIn
from webhooks.queues import MAX_AGE_SECONDS, MAX_HOPS, SqsQueue

from conftest import Stack
from support import drain, receive, sqs_event


@pytest.fixture
def partners(stack: Stack) -> dict[str, str]:
    store = stack.store()
    ids = {
        "exact": store.create("exact", "https://e.example", ["order.created"]).partner.id,
        "prefix": store.create("prefix", "https://p.example", ["order.*"]).partner.id,
        "star": store.create("star", "https://s.example", ["*"]).partner.id,
        "customers": store.create("customers", "https://c.example", ["customer.created"]).partner.id,
        "inactive": store.create("inactive", "https://i.example", ["order.created", "*"]).partner.id,
    }
    store.set_active(ids["inactive"], False)
    return ids


def send_envelope(stack: Stack, *event_types: str) -> list[str]:
    accepted = accept_events([EventIn(eventType=t, data={"n": i}) for i, t in enumerate(event_types)])
    for envelope in pack_envelopes(accepted, "producer", 262_144):
        stack.sqs.send_message(QueueUrl=stack.url("EVENTS_QUEUE_URL"), MessageBody=envelope.body)
    return [e["eventId"] for e in accepted]


def dispatch_once(stack: Stack, handler: Any, count: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    messages = receive(stack.sqs, stack.url("EVENTS_QUEUE_URL"), count)
    assert len(messages) == count
    return handler(sqs_event(messages, stack.url("EVENTS_QUEUE_URL"))), messages


def deliveries(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for m in drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL")):
        message = DeliveryMessage.model_validate_json(m["Body"])
        attrs = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
        assert attrs == {
            "partnerId": message.partnerId,
            "eventId": message.event.eventId,
            "eventType": message.event.eventType,
        }
        assert "secret" not in m["Body"].lower() and "whsec_" not in m["Body"]
        found.append((message.event.eventId, message.partnerId))
    return found


def test_fan_out_to_exactly_the_subscribed_active_partners(
    stack: Stack, function: Any, partners: dict[str, str]
) -> None:
    handler = function("dispatch")
    order, customer, other = send_envelope(stack, "order.created", "customer.created", "ping.pong")
    result, _ = dispatch_once(stack, handler)
    assert result == {"batchItemFailures": []}
    got = Counter(deliveries(stack))
    expected = Counter(
        [
            (order, partners["exact"]),
            (order, partners["prefix"]),
            (order, partners["star"]),
            (customer, partners["star"]),
            (customer, partners["customers"]),
            (other, partners["star"]),
        ]
    )
    assert got == expected
    assert drain(stack.sqs, stack.url("EVENTS_QUEUE_URL")) == []


def test_events_without_subscribers_are_done(stack: Stack, function: Any) -> None:
    handler = function("dispatch")
    send_envelope(stack, "nobody.listens")
    result, _ = dispatch_once(stack, handler)
    assert result == {"batchItemFailures": []}
    assert deliveries(stack) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json at all", "malformed envelope"),
        (json.dumps({"version": 2, "events": []}), "unsupported envelope version: 2"),
        (json.dumps({"version": 1, "events": [{"eventId": "x"}]}), "malformed envelope: events.0.eventType"),
    ],
)
def test_unreadable_envelopes_go_to_the_events_dlq_with_the_reason(
    stack: Stack, function: Any, body: str, reason: str
) -> None:
    handler = function("dispatch")
    stack.sqs.send_message(QueueUrl=stack.url("EVENTS_QUEUE_URL"), MessageBody=body)
    result, messages = dispatch_once(stack, handler)
    assert result == {"batchItemFailures": []}
    dead = drain(stack.sqs, stack.url("EVENTS_DLQ_URL"))
    assert [d["Body"] for d in dead] == [body]
    assert dead[0]["MessageAttributes"]["reason"]["StringValue"].startswith(reason)
    assert dead[0]["MessageAttributes"]["originalMessageId"]["StringValue"] == messages[0]["MessageId"]


def test_partial_fan_out_requeues_only_what_is_owed(
    stack: Stack, function: Any, partners: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = function("dispatch")
    dispatcher = sys.modules["webhooks_function_dispatch"].dispatcher
    real = dispatcher.delivery_queue.send_batch
    refused_partner = partners["prefix"]

    def refuse_one_partner(messages: Any) -> list[str]:
        keep = [m for m in messages if m.attributes["partnerId"] != refused_partner]
        unsent: list[str] = real(keep)
        return unsent + [m.id for m in messages if m not in keep]

    monkeypatch.setattr(dispatcher.delivery_queue, "send_batch", refuse_one_partner)
    order_ids = send_envelope(stack, *["order.created"] * 6)
    result, _ = dispatch_once(stack, handler)
    assert result == {"batchItemFailures": []}  # the original is acknowledged
    first = deliveries(stack)
    assert {p for _, p in first} == {partners["exact"], partners["star"]}
    assert len(first) == 12

    # the remainder is a new envelope on the events queue, owed to the refused partner only
    queued = drain(stack.sqs, stack.url("EVENTS_QUEUE_URL"))
    assert len(queued) == 1
    remainder = EventEnvelope.model_validate_json(queued[0]["Body"])
    assert remainder.endpoints == {eid: [(refused_partner, None)] for eid in order_ids}  # first endpoints
    # first endpoints only: also the field a dispatcher from before endpoints reads (rollback)
    assert remainder.partners == {eid: [refused_partner] for eid in order_ids}
    assert remainder.hops == 1 and remainder.acceptedAt is not None  # for dispatch's loop bounds

    monkeypatch.setattr(dispatcher.delivery_queue, "send_batch", real)
    stack.sqs.send_message(QueueUrl=stack.url("EVENTS_QUEUE_URL"), MessageBody=queued[0]["Body"])
    result, _ = dispatch_once(stack, handler)
    assert result == {"batchItemFailures": []}
    second = deliveries(stack)
    assert Counter(second) == Counter((eid, refused_partner) for eid in order_ids)
    assert not set(first) & set(second)  # nobody got a second delivery message


def test_when_the_requeue_fails_too_the_record_is_reported_failed(
    stack: Stack, function: Any, partners: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = function("dispatch")
    dispatcher = sys.modules["webhooks_function_dispatch"].dispatcher

    def down(*args: Any, **kwargs: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    monkeypatch.setattr(dispatcher.delivery_queue, "send_batch", down)
    monkeypatch.setattr(dispatcher.events_queue, "send", down)
    send_envelope(stack, "order.created")
    result, messages = dispatch_once(stack, handler)
    assert result == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}


def test_database_down_hands_the_batch_back_with_a_short_backoff(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    send_envelope(stack, "order.created")
    send_envelope(stack, "order.updated")
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
    handler = function("dispatch")
    result, messages = dispatch_once(stack, handler, count=2)
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        m["MessageId"] for m in messages
    )
    started = time.monotonic()
    assert receive(stack.sqs, stack.url("EVENTS_QUEUE_URL"), 2, timeout=3) == []  # deferred ~5 s, not lost
    back = receive(stack.sqs, stack.url("EVENTS_QUEUE_URL"), 2, timeout=8)
    assert len(back) == 2 and time.monotonic() - started >= 3.5
    assert drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL")) == []


@pytest.mark.parametrize(
    ("bound", "reason"),
    [
        ({"hops": MAX_HOPS + 1}, f"re-sent {MAX_HOPS + 1} times, over the bound"),
        ({"hops": 1, "acceptedAt": time.time() - MAX_AGE_SECONDS - 86_400}, "accepted 36.0 days ago"),
    ],
)
def test_a_remainder_re_enqueued_past_the_hop_or_age_bound_is_dead_lettered_with_the_reason(
    stack: Stack, function: Any, partners: dict[str, str], bound: dict[str, Any], reason: str
) -> None:
    handler = function("dispatch")
    send_envelope(stack, "order.created")
    [original] = drain(stack.sqs, stack.url("EVENTS_QUEUE_URL"))
    looping = EventEnvelope.model_validate_json(original["Body"]).model_copy(update=bound)
    body = looping.model_dump_json(exclude_none=True)
    stack.sqs.send_message(QueueUrl=stack.url("EVENTS_QUEUE_URL"), MessageBody=body)
    result, _ = dispatch_once(stack, handler)
    assert result == {"batchItemFailures": []}
    assert deliveries(stack) == []
    [dead] = drain(stack.sqs, stack.url("EVENTS_DLQ_URL"))
    assert dead["Body"] == body
    assert dead["MessageAttributes"]["reason"]["StringValue"].startswith(reason)


def test_deliveries_carry_the_envelopes_acceptance_time_and_hops(
    stack: Stack, function: Any, partners: dict[str, str]
) -> None:
    handler = function("dispatch")
    send_envelope(stack, "customer.created")
    _, messages = dispatch_once(stack, handler)
    sent = drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))
    assert len(sent) == 2  # "customers" and "star"
    for delivered in sent:
        message = DeliveryMessage.model_validate_json(delivered["Body"])
        assert message.acceptedAt == int(messages[0]["Attributes"]["SentTimestamp"]) / 1000
        assert message.hops == 0


def test_the_events_accepted_count_takes_each_envelope_once_on_its_first_receive(
    stack: Stack, function: Any
) -> None:
    handler = function("dispatch")
    send_envelope(stack, "order.created", "order.updated")
    send_envelope(stack, "customer.created")
    result, messages = dispatch_once(stack, handler, count=2)
    assert result == {"batchItemFailures": []}
    again = sqs_event(messages, stack.url("EVENTS_QUEUE_URL"))
    for record in again["Records"]:  # SQS hands the same envelopes back (e.g. a timeout)
        record["attributes"]["ApproximateReceiveCount"] = "2"
    assert handler(again) == {"batchItemFailures": []}
    counted = stack.db["deliveryStats"].find({"partnerId": "_events"})
    assert sum(doc["accepted"] for doc in counted) == 3


def test_remainders_and_the_platforms_own_envelopes_are_not_counted_as_accepted(
    stack: Stack, function: Any, partners: dict[str, str]
) -> None:
    handler = function("dispatch")
    event_ids = send_envelope(stack, "order.created", "order.updated")  # a producer's: counted
    queue = stack.url("EVENTS_QUEUE_URL")
    accepted = accept_events([EventIn(eventType="order.created", data={})])
    remainder = EventEnvelope.model_validate(
        {"source": "producer", "events": accepted, "partners": {accepted[0]["eventId"]: [partners["exact"]]}}
    )
    own = EventEnvelope.model_validate(
        {"source": "webhooks", "events": accept_events([EventIn(eventType="endpoint.disabled", data={})])}
    )
    for envelope in (remainder, own):  # each received for the first time, too
        stack.sqs.send_message(QueueUrl=queue, MessageBody=envelope.model_dump_json(exclude_none=True))
    result, _ = dispatch_once(stack, handler, count=3)
    assert result == {"batchItemFailures": []}
    assert len(event_ids) == 2
    counted = stack.db["deliveryStats"].find({"partnerId": "_events"})
    assert sum(doc["accepted"] for doc in counted) == 2


# --- the platform's own events: only for the partner they are about -----------------------


@pytest.fixture
def tenants(stack: Stack) -> dict[str, str]:
    """Partners who could want an ``endpoint.disabled``: by name, by namespace, by ``*``."""
    store = stack.store()
    subscriptions = {
        "named": ["order.created", "endpoint.disabled"],
        "namespace": ["endpoint.*"],
        "star": ["*"],
        "orders": ["order.*"],
    }
    return {
        name: store.create(name, f"https://{name}.example", events).partner.id
        for name, events in subscriptions.items()
    }


def announce_disabled(stack: Stack, partner_id: str) -> None:
    """Publish an ``endpoint.disabled`` for ``partner_id`` as the deliverer does."""
    now = datetime.now(UTC)
    reason = "3 consecutive failed attempts; last: internal-host:8443 refused"
    announce(
        Disabled(partner_id, f"name-{partner_id}", 3, now, now, reason),
        SqsQueue(stack.sqs, stack.url("EVENTS_QUEUE_URL")),
    )


def announced(messages: list[dict[str, Any]]) -> dict[str, str]:
    """The eventId of each dispatched ``endpoint.disabled``, by the partner it is about."""
    events = [e for m in messages for e in json.loads(m["Body"])["events"]]
    assert {e["eventType"] for e in events} == {"endpoint.disabled"}
    return {e["data"]["partnerId"]: e["eventId"] for e in events}


def test_endpoint_disabled_goes_only_to_the_partner_it_is_about(
    stack: Stack, function: Any, tenants: dict[str, str]
) -> None:
    announce_disabled(stack, tenants["named"])
    result, messages = dispatch_once(stack, function("dispatch"))
    assert result == {"batchItemFailures": []}
    # not the `*` partner, nor the one subscribed to the whole `endpoint.*` namespace
    assert deliveries(stack) == [(announced(messages)[tenants["named"]], tenants["named"])]


def test_a_partner_subscribed_to_everything_gets_no_endpoint_disabled_not_even_its_own(
    stack: Stack, function: Any, tenants: dict[str, str]
) -> None:
    announce_disabled(stack, tenants["star"])
    announce_disabled(stack, tenants["orders"])
    result, _ = dispatch_once(stack, function("dispatch"), count=2)
    assert result == {"batchItemFailures": []}
    assert deliveries(stack) == []  # `*` and `order.*` never match a platform event


def test_a_partner_subscribed_to_the_endpoint_namespace_gets_only_its_own(
    stack: Stack, function: Any, tenants: dict[str, str]
) -> None:
    announce_disabled(stack, tenants["namespace"])
    announce_disabled(stack, tenants["named"])
    result, messages = dispatch_once(stack, function("dispatch"), count=2)
    assert result == {"batchItemFailures": []}
    about = announced(messages)
    assert sorted(deliveries(stack)) == sorted(
        [(about[tenants["namespace"]], tenants["namespace"]), (about[tenants["named"]], tenants["named"])]
    )


def test_a_remainder_cannot_carry_a_partners_endpoint_disabled_to_another(
    stack: Stack, function: Any, tenants: dict[str, str]
) -> None:
    [event] = accept_events([EventIn(eventType="endpoint.disabled", data={"partnerId": tenants["named"]})])
    remainder = EventEnvelope.model_validate(
        {
            "source": "webhooks",
            "events": [event],
            "partners": {event["eventId"]: [tenants["star"], tenants["named"]]},
        }
    )
    queue = stack.url("EVENTS_QUEUE_URL")
    stack.sqs.send_message(QueueUrl=queue, MessageBody=remainder.model_dump_json(exclude_none=True))
    result, _ = dispatch_once(stack, function("dispatch"))
    assert result == {"batchItemFailures": []}
    assert deliveries(stack) == [(event["eventId"], tenants["named"])]
