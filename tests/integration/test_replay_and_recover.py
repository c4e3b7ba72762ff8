"""Replay only to subscribed partners unless forced (API and CLI); recover bounded per request."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.models import Event, new_event_id, utc_timestamp
from webhooks.store.event_store import EventStore
from webhooks_cli.main import main

from conftest import Stack
from support import drain

PARTNERS = "/api/v1/admin/partners"


def test_replay_to_a_partner_not_subscribed_to_the_events_type_is_refused_unless_forced(
    stack: Stack, api: Any
) -> None:
    store = stack.store()
    subscribed = store.create("shop", "https://shop.example/h", ["order.*"]).partner.id
    other = store.create("other tenant", "https://other.example/h", ["cart.updated"]).partner.id
    event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={"n": 1})
    EventStore(stack.db).save([event])

    status, refused, _ = api("POST", f"{PARTNERS}/{other}/replay", {"eventId": event.eventId})
    assert status == 409, refused
    assert "not subscribed to 'order.created'" in refused["error"] and "force" in refused["error"]
    assert drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL")) == []

    status, sent, _ = api("POST", f"{PARTNERS}/{subscribed}/replay", {"eventId": event.eventId})
    assert (status, sent["enqueued"]) == (202, [event.eventId])
    status, forced, _ = api("POST", f"{PARTNERS}/{other}/replay", {"eventId": event.eventId, "force": True})
    assert (status, forced["enqueued"]) == (202, [event.eventId])
    queued = [json.loads(m["Body"])["partnerId"] for m in drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))]
    assert sorted(queued) == sorted([subscribed, other])


def test_cli_replay_refuses_an_unsubscribed_partner_unless_forced(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    other = stack.store().create("other tenant", "https://other.example/h", ["cart.updated"]).partner.id
    event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
    EventStore(stack.db).save([event])
    assert main(["replay", "--partner", other, "--event-id", event.eventId]) == 1
    assert "not subscribed to 'order.created'" in capsys.readouterr().err
    assert drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL")) == []
    assert main(["replay", "--partner", other, "--event-id", event.eventId, "--force"]) == 0
    assert json.loads(capsys.readouterr().out)["enqueued"] == [event.eventId]


def test_recover_is_bounded_per_request_and_reads_the_events_in_one_query(
    stack: Stack, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webhooks.services.recovery
    from webhooks.models import Event, new_event_id, utc_timestamp
    from webhooks.store.delivery_log import AttemptRecord, DeliveryLog
    from webhooks.store.event_store import EventStore

    monkeypatch.setattr(webhooks.services.recovery, "RECOVER_PER_REQUEST", 3)
    pid = stack.store().create("rec", "https://r.example/h", ["order.*"]).partner.id
    log, events = DeliveryLog(stack.db), EventStore(stack.db)
    since = datetime.now(UTC) - timedelta(minutes=1)
    buffer: list[dict[str, Any]] = []
    for _ in range(5):
        event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
        events.save([event])
        log.record(
            AttemptRecord(
                event.eventId,
                "order.created",
                pid,
                3,
                "dead_lettered",
                500,
                1.0,
                None,
                "HTTP 500",
                b"",
                datetime.now(UTC),
            ),
            buffer,
        )
    log.flush(buffer)
    single_reads: list[str] = []
    monkeypatch.setattr(EventStore, "get", lambda self, i: single_reads.append(i))
    status, body, _ = api("POST", f"/api/v1/admin/partners/{pid}/recover", {"since": since.isoformat()})
    assert status == 202 and len(body["enqueued"]) == 3 and body["remaining"] == 2
    assert single_reads == []  # no query per event
    assert len(drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))) == 3
