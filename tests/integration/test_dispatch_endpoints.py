"""Dispatch per endpoint: one delivery message per (event, endpoint) that subscribes and whose
filter lets the event through; the subscriptions (endpoints and filters included) still read in
one query per batch; remainders name (partner, endpoint) pairs. Real moto SQS, SecantusDB."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from typing import Any

import pytest
from bson import ObjectId

from webhooks.endpoints.model import first_endpoint_id
from webhooks.endpoints.store import EndpointStore
from webhooks.ingest.enqueue import accept_events, pack_envelopes
from webhooks.models import DeliveryMessage, EventEnvelope, EventIn
from webhooks.observability import metrics

from conftest import Stack
from support import drain, receive, sqs_event

Delivery = tuple[str, str, str | None]  # (event id, partner id, endpoint id: None for the first)


def endpoint_store(stack: Stack) -> EndpointStore:
    store = EndpointStore(stack.db, stack.store())
    store.ensure_indexes()
    return store


def add_endpoint(stack: Stack, partner_id: str, events: list[str], **settings: Any) -> str:
    created, _ = endpoint_store(stack).create(
        partner_id, {"url": f"https://{len(events)}.example/hook", **settings}, events
    )
    return created.id


def send(stack: Stack, *events: tuple[str, dict[str, Any]]) -> list[str]:
    accepted = accept_events([EventIn(eventType=t, data=d) for t, d in events])
    for envelope in pack_envelopes(accepted, "producer", 262_144):
        stack.sqs.send_message(QueueUrl=stack.url("EVENTS_QUEUE_URL"), MessageBody=envelope.body)
    return [e["eventId"] for e in accepted]


def send_body(stack: Stack, envelope: EventEnvelope) -> None:
    body = envelope.model_dump_json(exclude_none=True)
    stack.sqs.send_message(QueueUrl=stack.url("EVENTS_QUEUE_URL"), MessageBody=body)


def dispatch(stack: Stack, handler: Any, count: int = 1) -> None:
    messages = receive(stack.sqs, stack.url("EVENTS_QUEUE_URL"), count)
    assert len(messages) == count
    assert handler(sqs_event(messages, stack.url("EVENTS_QUEUE_URL"))) == {"batchItemFailures": []}


def deliveries(stack: Stack) -> Counter[Delivery]:
    found: Counter[Delivery] = Counter()
    for m in drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL")):
        message = DeliveryMessage.model_validate_json(m["Body"])
        attributes = {k: v["StringValue"] for k, v in m["MessageAttributes"].items()}
        assert attributes.get("endpointId") == message.endpointId  # absent for a first endpoint
        assert ("endpointId" in m["Body"]) == (message.endpointId is not None)  # bytes as before
        found[(message.event.eventId, message.partnerId, message.endpointId)] += 1
    return found


def test_two_endpoints_of_one_partner_with_different_event_types_get_one_message_each(
    stack: Stack, function: Any
) -> None:
    partner = stack.store().create("acme", "https://acme.example/hook", ["order.created", "order.*"]).partner
    customers = add_endpoint(stack, partner.id, ["customer.created"])
    everything = add_endpoint(stack, partner.id, ["order.*", "customer.*"])
    order, customer, other = send(
        stack, ("order.created", {}), ("customer.created", {}), ("invoice.paid", {})
    )
    dispatch(stack, function("dispatch"))
    assert deliveries(stack) == Counter(
        [
            (order, partner.id, None),  # once, though two of its patterns match
            (order, partner.id, everything),
            (customer, partner.id, customers),
            (customer, partner.id, everything),
        ]
    )
    assert other  # nobody subscribes to it: no message


def test_a_filter_lets_150_through_and_not_50_and_counts_what_it_kept_out(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner = stack.store().create("acme", "https://acme.example/hook", ["order.created"]).partner
    big = add_endpoint(stack, partner.id, ["order.created"], filter={"data": {"value": {"$gte": 100}}})
    # the first endpoint's filter lives in the partner document (endpointFilter)
    endpoint_store(stack).update(
        partner.id, first_endpoint_id(partner.id), {"filter": {"data": {"value": {"$lt": 100}}}}
    )
    unfiltered = add_endpoint(stack, partner.id, ["order.*"])
    counted: list[tuple[str, float]] = []
    real = metrics.add_metric

    def spy(*, name: str, unit: Any, value: float, **kwargs: Any) -> None:
        counted.append((name, value))
        real(name=name, unit=unit, value=value, **kwargs)

    monkeypatch.setattr(metrics, "add_metric", spy)
    high, low = send(stack, ("order.created", {"value": 150}), ("order.created", {"value": 50}))
    dispatch(stack, function("dispatch"))
    assert deliveries(stack) == Counter(
        [
            (high, partner.id, big),
            (high, partner.id, unfiltered),
            (low, partner.id, None),
            (low, partner.id, unfiltered),
        ]
    )
    assert ("EventsFiltered", 2) in counted
    assert not [name for name, _ in counted if name == "EventsWithoutSubscribers"]


def test_a_stored_filter_that_no_longer_parses_delivers_unfiltered_and_says_so(
    stack: Stack, function: Any, caplog: pytest.LogCaptureFixture
) -> None:
    partner = stack.store().create("acme", "https://acme.example/hook", []).partner
    endpoint = add_endpoint(stack, partner.id, ["order.created"])
    # written around the API: an operator the parser does not know
    stack.db.endpoints.update_one({"_id": endpoint}, {"$set": {"filter": {"data": {"$regex": "x"}}}})
    [event] = send(stack, ("order.created", {"value": 1}))
    with caplog.at_level(logging.ERROR):
        dispatch(stack, function("dispatch"))
    assert deliveries(stack) == Counter([(event, partner.id, endpoint)])
    [record] = [r for r in caplog.records if "filter unreadable" in r.getMessage()]
    assert record.__dict__["endpoint_id"] == endpoint and "$regex" in record.__dict__["reason"]


def test_a_deleted_endpoints_leftover_subscriptions_and_another_partners_endpoint_get_nothing(
    stack: Stack, function: Any
) -> None:
    store = stack.store()
    acme = store.create("acme", "https://acme.example/hook", []).partner
    other = store.create("other", "https://other.example/hook", []).partner
    gone = add_endpoint(stack, acme.id, ["order.created"])
    stack.db.endpoints.delete_one({"_id": gone})  # its subscription row is left behind
    live = add_endpoint(stack, acme.id, ["customer.created"])
    # a row of `other` naming acme's endpoint must not send acme's endpoint other's events
    row = {
        "partnerId": ObjectId(other.id),
        "eventType": "order.created",
        "isActive": True,
        "endpointId": live,
    }
    stack.db.subscriptions.insert_one(row)
    send(stack, ("order.created", {}))
    dispatch(stack, function("dispatch"))
    assert deliveries(stack) == Counter()


def test_one_subscription_query_per_batch_with_endpoints_and_filters(stack: Stack, function: Any) -> None:
    store = stack.store()
    for n in range(3):
        partner = store.create(f"p{n}", f"https://{n}.example/hook", ["order.created"]).partner
        add_endpoint(stack, partner.id, ["customer.*"], filter={"data": {"n": {"$gte": 0}}})
        add_endpoint(stack, partner.id, ["order.*", "invoice.paid"])
    handler = function("dispatch")
    dispatcher = sys.modules["webhooks_function_dispatch"].dispatcher
    reads: Counter[str] = Counter()
    for name in ("subscriptions", "partners", "endpoints"):
        collection = getattr(dispatcher.store, name)
        for method in ("find", "find_one", "aggregate", "count_documents"):
            real = getattr(collection, method)

            def counted(*args: Any, _real: Any = real, _key: str = f"{name}.{method}", **kw: Any) -> Any:
                reads[_key] += 1
                return _real(*args, **kw)

            setattr(collection, method, counted)
    send(stack, ("order.created", {"n": 1}), ("customer.created", {"n": 2}))
    send(stack, ("invoice.paid", {"n": 3}), ("customer.updated", {"n": 4}))
    dispatch(stack, handler, count=2)
    assert sum(deliveries(stack).values()) == 3 * 5  # every endpoint got what it subscribes to
    assert reads == Counter({"subscriptions.aggregate": 1})


def test_a_remainder_names_endpoints_and_fans_out_to_exactly_those(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner = stack.store().create("acme", "https://acme.example/hook", ["order.created"]).partner
    refused = add_endpoint(stack, partner.id, ["order.created"])
    handler = function("dispatch")
    queue = sys.modules["webhooks_function_dispatch"].dispatcher.delivery_queue
    real = queue.send_batch

    def refuse_one_endpoint(messages: Any) -> list[str]:
        keep = [m for m in messages if m.attributes["endpointId"] != refused]
        unsent: list[str] = real(keep)
        return unsent + [m.id for m in messages if m not in keep]

    monkeypatch.setattr(queue, "send_batch", refuse_one_endpoint)
    event_ids = send(stack, ("order.created", {}), ("order.created", {}))
    dispatch(stack, handler)
    assert deliveries(stack) == Counter((e, partner.id, None) for e in event_ids)
    [queued] = drain(stack.sqs, stack.url("EVENTS_QUEUE_URL"))
    remainder = EventEnvelope.model_validate_json(queued["Body"])
    assert remainder.endpoints == {e: [(partner.id, refused)] for e in event_ids}
    assert remainder.partners is None and remainder.hops == 1

    monkeypatch.setattr(queue, "send_batch", real)
    stack.sqs.send_message(QueueUrl=stack.url("EVENTS_QUEUE_URL"), MessageBody=queued["Body"])
    dispatch(stack, handler)
    assert deliveries(stack) == Counter((e, partner.id, refused) for e in event_ids)
    # the remainder's events were counted as accepted once, with the original envelope
    counted = stack.db["deliveryStats"].find({"partnerId": "_events"})
    assert sum(doc["accepted"] for doc in counted) == 2


def test_a_remainder_too_large_for_one_message_is_split_and_each_endpoint_gets_one_delivery(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner = stack.store().create("acme", "https://acme.example/hook", ["order.created"]).partner
    others = [add_endpoint(stack, partner.id, ["order.created"]) for _ in range(8)]
    handler = function("dispatch")
    dispatcher = sys.modules["webhooks_function_dispatch"].dispatcher
    real = dispatcher.delivery_queue.send_batch
    monkeypatch.setattr(dispatcher.delivery_queue, "send_batch", lambda messages: [m.id for m in messages])
    monkeypatch.setattr(dispatcher, "max_message_bytes", 1500)  # 2 events x 9 endpoints: ~1.9 KB in one
    event_ids = send(stack, ("order.created", {}), ("order.created", {}))
    dispatch(stack, handler)
    queued = drain(stack.sqs, stack.url("EVENTS_QUEUE_URL"))
    assert len(queued) > 2 and all(len(m["Body"].encode()) <= 1500 for m in queued)

    monkeypatch.setattr(dispatcher.delivery_queue, "send_batch", real)
    for message in queued:
        stack.sqs.send_message(QueueUrl=stack.url("EVENTS_QUEUE_URL"), MessageBody=message["Body"])
    dispatch(stack, handler, count=len(queued))
    owed = [(e, partner.id, ep) for e in event_ids for ep in [None, *others]]
    assert deliveries(stack) == Counter(owed)  # each exactly once


def test_a_remainder_written_before_endpoints_still_goes_to_first_endpoints_only(
    stack: Stack, function: Any
) -> None:
    partner = stack.store().create("acme", "https://acme.example/hook", ["order.created"]).partner
    add_endpoint(stack, partner.id, ["order.created"])  # subscribes too, but was not owed
    accepted = accept_events([EventIn(eventType="order.created", data={})])
    old = {"source": "producer", "events": accepted, "partners": {accepted[0]["eventId"]: [partner.id]}}
    send_body(stack, EventEnvelope.model_validate(old))
    dispatch(stack, function("dispatch"))
    assert deliveries(stack) == Counter([(accepted[0]["eventId"], partner.id, None)])


def test_endpoint_disabled_goes_only_to_the_subscribing_endpoints_of_the_partner_it_is_about(
    stack: Stack, function: Any
) -> None:
    store = stack.store()
    about = store.create("about", "https://about.example/hook", ["order.created"]).partner
    named = add_endpoint(stack, about.id, ["endpoint.disabled"])
    namespace = add_endpoint(stack, about.id, ["endpoint.*"])
    add_endpoint(stack, about.id, ["*"])  # `*` never brings the platform's events
    bystander = store.create("bystander", "https://by.example/hook", ["endpoint.disabled"]).partner
    add_endpoint(stack, bystander.id, ["endpoint.disabled"])
    [event] = accept_events([EventIn(eventType="endpoint.disabled", data={"partnerId": about.id})])
    send_body(stack, EventEnvelope.model_validate({"source": "webhooks", "events": [event]}))
    dispatch(stack, function("dispatch"))
    assert deliveries(stack) == Counter(
        [(event["eventId"], about.id, named), (event["eventId"], about.id, namespace)]
    )


def test_endpoints_with_the_same_filter_share_one_compiled_filter(stack: Stack) -> None:
    store = stack.store()
    for n in range(2):
        partner = store.create(f"p{n}", f"https://{n}.example/hook", []).partner
        add_endpoint(stack, partner.id, ["order.created"], filter={"data": {"value": {"$gte": 100}}})
    first, second = store.targets(["order.created"])["order.created"]
    assert first.filter is not None and first.filter is second.filter
    assert first.partner_id != second.partner_id
