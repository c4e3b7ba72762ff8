"""A partner whose stored secret cannot sign (a legacy document) gets no webhook signed with an
empty key: the delivery is dead-lettered with the reason instead, and nothing is POSTed."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from webhooks.models import DeliveryMessage

from conftest import Delivery, Stack
from support import drain


@pytest.mark.parametrize("stored", [None, 12345, ["whsec_x"]], ids=["missing", "number", "list"])
def test_a_partner_without_a_usable_secret_gets_no_post_and_the_delivery_is_dead_lettered(
    stack: Stack, delivery: Delivery, receiver_factory: Any, stored: Any
) -> None:
    receiver = receiver_factory()
    created = stack.store().create(f"legacy-{stored!r}", receiver.url, ["order.created"])
    update = {"$unset": {"secretKey": ""}} if stored is None else {"$set": {"secretKey": stored}}
    stack.db.partners.update_one({"_id": ObjectId(created.partner.id)}, update)

    event = delivery.enqueue(created.partner.id)
    result, messages = delivery.run()
    delivery.delete(result, messages)

    assert result == {"batchItemFailures": []}
    assert receiver.requests == []
    [dead] = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    attrs = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attrs["partnerId"] == created.partner.id
    assert attrs["attempts"] == "0"
    assert "no usable signing secret" in attrs["lastError"]
    assert DeliveryMessage.model_validate_json(dead["Body"]).event == event
    assert drain(stack.sqs, delivery.queue) == []
