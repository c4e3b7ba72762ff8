"""Invocations of one function side by side in a process write only their own records."""

from __future__ import annotations

from typing import Any

from conftest import Stack
from support import Reply


def test_an_invocation_ending_writes_only_its_own_attempts_and_health(
    stack: Stack, function: Any, receiver_factory: Any
) -> None:
    """The local runtime runs invocations of one function side by side in a process: the one
    that ends first must not write (nor lose) the other's delivery log and health records."""
    import sys

    from webhooks.delivery.receipt import Receipt
    from webhooks.models import DeliveryMessage, Event, new_event_id, to_json, utc_timestamp

    function("deliver")  # loads the module (a cold start) with this test's environment
    deliverer = sys.modules["webhooks_function_deliver"].deliverer
    good, bad = receiver_factory(), receiver_factory([Reply(500)])
    good_id = stack.store().create("good", good.url, ["order.*"]).partner.id
    bad_id = stack.store().create("bad", bad.url, ["order.*"]).partner.id

    def body(partner_id: str) -> str:
        event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
        return to_json(DeliveryMessage(partnerId=partner_id, event=event).model_dump())

    first, second = deliverer.begin_batch([]), deliverer.begin_batch([])
    deliverer.deliver(body(good_id), Receipt("receipt-1"), first)
    assert deliverer.deliver(body(bad_id), Receipt("receipt-2"), second).outcome == "retry"
    deliverer.finish_batch(first)
    logged = list(stack.db["deliveryAttempts"].find())
    assert [d["partnerId"] for d in logged] == [good_id]  # only the first invocation's
    assert stack.store().get(bad_id).consecutive_failures == 0  # its streak not written yet
    deliverer.finish_batch(second)
    assert sorted(d["partnerId"] for d in stack.db["deliveryAttempts"].find()) == sorted([good_id, bad_id])
    assert stack.store().get(bad_id).consecutive_failures == 1
