"""The `webhooks` command against the test's MongoDB and queues (in-process)."""

from __future__ import annotations

from typing import Any

import pytest

from webhooks.models import DeliveryMessage, Event, to_json

from conftest import Stack
from support import drain
from support import run_cli as run


def test_create_prints_json_that_works_for_lookup(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, created, err = run(
        capsys,
        "partners",
        "create",
        "--name",
        "Acme",
        "--url",
        "https://acme.example/h",
        "--events",
        "order.created,order.*",
        "--json",
    )
    assert code == 0
    assert {"partnerId", "apiKey", "secretKey", "name", "webhookUrl", "events"} <= set(created)
    assert "shown once" in err
    partner = stack.store().find_by_api_key(created["apiKey"])
    assert partner is not None and partner.id == created["partnerId"]
    assert stack.store().subscribers(["order.created"])["order.created"] == [created["partnerId"]]

    code, shown, _ = run(capsys, "partners", "show", created["partnerId"])
    assert (
        shown["events"] == ["order.*", "order.created"] and "secretKey" not in shown and "apiKey" not in shown
    )

    code, rotated, _ = run(capsys, "partners", "rotate-secret", created["partnerId"], "--overlap-hours", "1")
    assert rotated["secretKey"] != created["secretKey"]
    assert stack.store().get(created["partnerId"]).signing_secrets()[1] == created["secretKey"]

    run(capsys, "partners", "unsubscribe", created["partnerId"], "--events", "order.*")
    code, shown, _ = run(capsys, "partners", "subscribe", created["partnerId"], "--events", "customer.*")
    assert shown["events"] == ["customer.*", "order.created"]

    code, shown, _ = run(capsys, "partners", "deactivate", created["partnerId"])
    assert shown["isActive"] is False
    assert stack.store().find_by_api_key(created["apiKey"]) is None
    code, listed, _ = run(capsys, "partners", "list", "--json")
    assert [p["name"] for p in listed] == ["Acme"]


def test_rate_limit_and_enable_endpoint(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    from webhooks.delivery.parked import ParkedDeliveries

    partner_id = stack.store().create("Limited", "https://limited.example/h", ["order.*"]).partner.id
    code, shown, _ = run(capsys, "partners", "rate-limit", partner_id, "--per-second", "5")
    assert code == 0 and shown["rateLimit"] == 5 and stack.store().get(partner_id).rate_limit == 5
    code, _, err = run(capsys, "partners", "rate-limit", partner_id, "--per-second", "-1")
    assert code != 0 and "rateLimit" in err
    code, shown, _ = run(capsys, "partners", "rate-limit", partner_id, "--per-second", "0")
    assert code == 0 and shown["rateLimit"] is None

    assert stack.store().disable_endpoint(partner_id, "test")
    event = Event(
        eventId="event_parked", eventType="order.created", timestamp="2026-11-28T00:00:00.000Z", data={}
    )
    ParkedDeliveries(stack.db).park(DeliveryMessage(partnerId=partner_id, event=event))
    code, enabled, _ = run(capsys, "partners", "enable-endpoint", partner_id)
    assert code == 0 and enabled["replayed"] == 1 and enabled["endpoint"]["status"] == "enabled"
    [message] = drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"), wait=1)
    assert DeliveryMessage.model_validate_json(message["Body"]).event.eventId == "event_parked"


def test_publish_scopes_are_set_and_removed_through_the_cli(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    partner_id = stack.store().create("Scoped", "https://scoped.example/h", []).partner.id
    code, shown, _ = run(capsys, "partners", "publish-scopes", partner_id, "--events", "order.*,cart.updated")
    assert code == 0 and shown["publishScopes"] == ["order.*", "cart.updated"]
    assert stack.store().get(partner_id).may_publish("cart.created") is not None
    code, _, err = run(capsys, "partners", "publish-scopes", partner_id, "--events", "Not A Type")
    assert code != 0 and "invalid publish scopes: publishScopes[0]" in err
    code, shown, _ = run(capsys, "partners", "publish-scopes", partner_id)
    assert code == 0 and shown["publishScopes"] is None
    assert stack.store().get(partner_id).may_publish("cart.created") is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["partners", "create", "--name", "x", "--url", "ftp://x", "--events", "a.b"],
            "invalid partner: webhookUrl",
        ),
        (
            ["partners", "create", "--name", "x", "--url", "https://x.example", "--events", "Bad Type"],
            "invalid partner: events[0]",
        ),
        (["partners", "show", "nope"], "no partner with id nope"),
        (["dlq", "redrive"], "--event-id ID or --all"),
    ],
)
def test_mistakes_get_a_sentence_and_a_non_zero_exit(
    stack: Stack, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code != 0 and message in err


def test_no_database_configured_is_explained(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.delenv("MONGO_URI", raising=False)
    monkeypatch.setenv("WEBHOOKS_LOCAL_DIR", str(tmp_path))
    code, _, err = run(capsys, "partners", "list")
    assert code == 2 and "set MONGO_URI, or start `webhooks local`" in err


def test_local_with_a_bad_port_variable_fails_naming_it_and_starts_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setenv("PORT", "abc")
    monkeypatch.setenv("WEBHOOKS_LOCAL_DIR", str(tmp_path))
    code, _, err = run(capsys, "local")
    assert code == 2 and "Invalid configuration: PORT: " in err and "'abc'" in err
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_dlq_list_and_redrive(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    dlq, queue = stack.url("DELIVERY_DLQ_URL"), stack.url("DELIVERY_QUEUE_URL")
    for n in range(12):  # more than one receive's worth
        event = Event(eventId=f"event_{n:024x}", eventType="a.b", timestamp="t", data={})
        stack.sqs.send_message(
            QueueUrl=dlq,
            MessageBody=to_json(DeliveryMessage(partnerId="p1", event=event).model_dump()),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v}
                for k, v in {
                    "partnerId": "p1",
                    "eventId": event.eventId,
                    "eventType": "a.b",
                    "attempts": "3",
                    "lastStatus": "502",
                    "lastError": "HTTP 502",
                }.items()
            },
        )
    code, listed, _ = run(capsys, "dlq", "list", "--json")
    assert code == 0 and len(listed) == 12
    assert listed[0] | {"eventId": "x", "messageId": "y", "deadLetteredAt": "z"} == {
        "eventId": "x",
        "eventType": "a.b",
        "partnerId": "p1",
        "endpointId": "ep_p1",  # a letter that names no endpoint: the partner's first
        "attempts": 3,
        "lastStatus": 502,
        "lastError": "HTTP 502",
        "messageId": "y",
        "deadLetteredAt": "z",
    }
    code, listed_again, _ = run(capsys, "dlq", "list", "--json")
    assert len(listed_again) == 12  # listing consumed nothing

    code, moved, _ = run(capsys, "dlq", "redrive", "--event-id", f"event_{3:024x}", "--json")
    assert [m["eventId"] for m in moved] == [f"event_{3:024x}"]
    back = drain(stack.sqs, queue)
    assert [DeliveryMessage.model_validate_json(m["Body"]).event.eventId for m in back] == [f"event_{3:024x}"]
    code, moved, _ = run(capsys, "dlq", "redrive", "--all", "--json")
    assert len(moved) == 11
    code, listed, _ = run(capsys, "dlq", "list", "--json")
    assert listed == []


def dead_letter(
    stack: Stack, message: DeliveryMessage | str, event_id: str = "", partner_id: str = "p1"
) -> None:
    """A letter in the delivery DLQ, with the attributes the queues keep."""
    body = message if isinstance(message, str) else message.as_body()
    attributes = (
        message.attributes()
        if isinstance(message, DeliveryMessage)
        else {"partnerId": partner_id, "eventId": event_id}
    )
    stack.sqs.send_message(
        QueueUrl=stack.url("DELIVERY_DLQ_URL"),
        MessageBody=body,
        MessageAttributes={k: {"DataType": "String", "StringValue": str(v)} for k, v in attributes.items()},
    )


def test_a_redriven_letter_is_a_fresh_delivery_and_an_unreadable_body_goes_back_as_it_is(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    event = Event(eventId=f"event_{7:024x}", eventType="a.b", timestamp="t", data={"n": 7})
    # what the queue's redrive policy moves: a retry's message with its counts and times
    spent = DeliveryMessage(
        partnerId="p1", event=event, priorAttempts=5, hops=3, acceptedAt=1.0, rateSlot=2, notBefore=3.0
    )
    dead_letter(stack, spent)
    dead_letter(stack, "not a delivery message", event_id=f"event_{8:024x}")
    code, moved, _ = run(capsys, "dlq", "redrive", "--all", "--json")
    assert code == 0 and len(moved) == 2
    back = {m["Body"] for m in drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))}
    assert back == {DeliveryMessage(partnerId="p1", event=event).as_body(), "not a delivery message"}


def test_dlq_list_and_redrive_work_without_mongodb_and_leave_nothing_hidden(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        event = Event(eventId=f"event_{n:024x}", eventType="a.b", timestamp="t", data={})
        dead_letter(stack, DeliveryMessage(partnerId="p1", event=event))
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
    code, listed, err = run(capsys, "dlq", "list", "--json")
    assert code == 0 and len(listed) == 3
    assert "no letter was checked for a delivery since" in err
    # visible again at once: a second listing reads every letter (LIST_VISIBILITY_SECONDS is 30)
    code, listed, _ = run(capsys, "dlq", "list", "--json")
    assert len(listed) == 3
    code, moved, err = run(capsys, "dlq", "redrive", "--all", "--json")
    assert code == 0 and len(moved) == 3 and "all were sent" in err
    assert len(drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))) == 3
