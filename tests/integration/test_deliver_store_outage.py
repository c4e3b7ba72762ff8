"""The partner store away (MongoDB not answering) while deliveries arrive: a deliberate short
wait, never a dead letter (moto's SQS server, SecantusDB, a real HTTP receiver)."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pymongo.errors import ServerSelectionTimeoutError

from webhooks.delivery import flow_control
from webhooks.models import DeliveryMessage

from conftest import Delivery, Stack
from support import drain


def test_a_store_outage_over_many_receives_defers_the_delivery_and_it_goes_out_once_the_store_is_back(
    stack: Stack, delivery: Delivery, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = receiver_factory()
    partner_id = stack.store().create("p-outage", receiver.url, ["order.created"]).partner.id
    event = delivery.enqueue(partner_id)
    store = sys.modules["webhooks_function_deliver"].deliverer.endpoints
    real_get_cached = store.get_cached
    outage = True

    def get_cached(partner_id: str, endpoint_id: str | None) -> Any:
        if outage:
            raise ServerSelectionTimeoutError("127.0.0.1:1: connection refused")
        return real_get_cached(partner_id, endpoint_id)

    monkeypatch.setattr(store, "get_cached", get_cached)
    # the deferral is 10-15 s in production; here the copy is due at once so the test need not wait
    monkeypatch.setattr(flow_control, "STORE_UNAVAILABLE_DEFER_SECONDS", 0)
    for _ in range(8):  # beyond MAX_UNATTEMPTED_RECEIVES (5) and the redrive's 10 counted together
        result, messages = delivery.run(timeout=6)
        if result["batchItemFailures"]:  # as SQS would: the original back (at once, for the test)
            stack.sqs.change_message_visibility(
                QueueUrl=delivery.queue, ReceiptHandle=messages[0]["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            delivery.delete(result, messages)
        assert receiver.requests == []
    assert drain(stack.sqs, stack.url("DELIVERY_DLQ_URL")) == []

    outage = False
    result, messages = delivery.run(timeout=6)
    # every receive during the outage was a fresh copy: never counted towards a bound
    assert messages[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    copy = DeliveryMessage.model_validate_json(messages[0]["Body"])
    assert (copy.event, copy.priorAttempts, copy.hops) == (event, 0, 8)
    assert result == {"batchItemFailures": []}
    delivery.delete(result, messages)
    assert len(receiver.requests) == 1
    assert drain(stack.sqs, delivery.queue) == []
    assert drain(stack.sqs, stack.url("DELIVERY_DLQ_URL")) == []
