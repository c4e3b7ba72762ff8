"""A partner's custom delivery headers: checked when set, and one the client cannot send is recorded, never leaked."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bson import ObjectId

from webhooks.models import DeliveryMessage

from conftest import Delivery, Stack
from support import drain, receive


def test_header_values_and_names_are_validated_when_set(stack: Stack, api: Any) -> None:
    pid = stack.store().create("h", "https://p.example/h", []).partner.id
    path = f"/api/v1/admin/partners/{pid}"
    refused = [
        {"Authorization": " Bearer s3cret-value"},  # leading whitespace
        {"Authorization": "Bearer s3cret-value "},  # trailing whitespace
        {"X-Token": "秘密"},  # not visible ASCII
        {"X-Token": "a\u2028b"},
        {"X_Recart_Signature_256": "forged"},  # "_" read as "-" by WSGI servers
        {"webhook_signature": "forged"},
        {"Content-Encoding": "gzip"},
        {"Expect": "100-continue"},
        {"Upgrade": "h2c"},
        {"X-Dup": "1", "x-dup": "2"},
        {"X-Dup": "1", "X_Dup": "2"},
    ]
    for headers in refused:
        status, body, _ = api("PATCH", path, {"headers": headers})
        assert status == 400, (headers, body)
        assert "s3cret-value" not in json.dumps(body) and "秘密" not in json.dumps(body)
    status, view, _ = api(
        "PATCH", path, {"headers": {"Hostname": "a.example", "Authorization": "Bearer a b"}}
    )
    assert status == 200 and set(view["headers"]) == {"Hostname", "Authorization"}


def store_headers_unchecked(stack: Stack, partner_id: str, headers: dict[str, str]) -> None:
    """A partner written before the checks existed (or by hand): the deliverer must cope."""
    stack.db["partners"].update_one({"_id": ObjectId(partner_id)}, {"$set": {"headers": headers}})


# CR/LF would inject a header; http.client refuses both and cannot encode the second
@pytest.mark.parametrize("value", ["Bearer s3cret-value\r\nX-Injected: 1", "Bearer 秘密-s3cret-value"])
def test_a_header_value_the_client_cannot_send_is_recorded_and_never_leaked(
    stack: Stack,
    function: Any,
    receiver_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    caplog: Any,
) -> None:
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "1")
    receiver = receiver_factory()
    created = stack.store().create("leaky", receiver.url, ["order.created"])
    store_headers_unchecked(stack, created.partner.id, {"Authorization": value})
    delivery = Delivery(stack, function("deliver"))
    delivery.enqueue(created.partner.id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}  # dead-lettered (max attempts 1), not lost
    assert receiver.requests == []
    [logged] = list(stack.db["deliveryAttempts"].find({"partnerId": created.partner.id}))
    assert logged["outcome"] == "dead_lettered" and logged["errorMessage"].startswith("request not sent")
    [dead] = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["attempts"] == "1" and attributes["lastError"].startswith("request not sent")
    logs = [{**r.__dict__, "msg": r.getMessage()} for r in caplog.records]
    everything = json.dumps([logged, attributes, logs], default=str)
    assert "s3cret-value" not in everything


def test_a_header_value_that_breaks_delivery_unexpectedly_is_still_recorded(
    stack: Stack, function: Any, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong inside the POST, the attempt is logged and retried, never silent."""
    # a backoff (4-5 s) well past the check below, however slow the SQS endpoint (LocalStack)
    monkeypatch.setenv("WEBHOOK_RETRY_DELAY", "5000")
    receiver = receiver_factory()
    created = stack.store().create("odd", receiver.url, ["order.created"])
    delivery = Delivery(stack, function("deliver"))
    import webhooks.delivery.deliverer as deliver_module

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom with Bearer s3cret-value inside")

    monkeypatch.setattr(deliver_module, "post", broken)
    delivery.enqueue(created.partner.id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}  # decided: its retry re-sent, due after the backoff
    delivery.delete(result, messages)
    [logged] = list(stack.db["deliveryAttempts"].find({"partnerId": created.partner.id}))
    assert logged["errorMessage"] == "internal error: RuntimeError" and logged["outcome"] == "retry"
    assert DeliveryMessage.model_validate_json(messages[0]["Body"]).partnerId == created.partner.id
    assert receive(stack.sqs, delivery.queue, 1, timeout=0.5) == []  # hidden for its backoff
