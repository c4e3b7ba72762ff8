"""The `webhooks` command against the test's MongoDB and queues (in-process)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhooks.models import DeliveryMessage, Event, to_json
from webhooks_cli.main import main

from conftest import Stack
from support import drain


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except ValueError:
        return code, out, err


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
