"""The bugs a full read of the code found (issue "One API, built the Powertools way"), one
test each, each failing before its fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.observability import metrics
from webhooks_cli.main import main

from conftest import Delivery, Stack
from support import Reply, api_event, drain

ADMIN_KEY = "bugs-admin"


@pytest.fixture
def admin(stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    loaded: list[Any] = []

    def call(method: str, path: str, body: Any = None, raw: str | None = None) -> tuple[int, dict[str, Any]]:
        if not loaded:
            loaded.append(function("ingest"))
        text = raw if raw is not None else (json.dumps(body) if body is not None else None)
        result = loaded[0](api_event(text, method=method, path=path, headers={"X-Admin-Key": ADMIN_KEY}))
        return result["statusCode"], json.loads(result["body"])

    return call


def test_1_rotation_overlap_defaults_to_secret_overlap_hours(
    stack: Stack, admin: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SECRET_OVERLAP_HOURS", "2")
    pid = stack.store().create("rot", "https://r.example/h", []).partner.id
    status, body = admin("POST", f"/api/v1/admin/partners/{pid}/rotate-secret")
    assert status == 200 and body["previousSecretValidHours"] == 2
    [(_, expires)] = stack.store().get(pid).previous_secrets
    assert timedelta(hours=1.9) < expires - datetime.now(UTC) <= timedelta(hours=2)
    assert main(["partners", "rotate-secret", pid]) == 0  # the CLI, through the same layer
    assert json.loads(capsys.readouterr().out)["previousSecretValidHours"] == 2


def test_2_a_failed_partner_create_leaves_no_partner_nobody_has_the_key_of(
    stack: Stack, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymongo.errors import AutoReconnect

    from webhooks.partners.store import PartnerStore

    def away(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AutoReconnect("connection lost")

    monkeypatch.setattr(PartnerStore, "update", away)  # the write after the insert fails
    body = {"name": "half", "webhookUrl": "https://h.example/h", "events": ["order.*"], "rateLimit": 5}
    status, reply = admin("POST", "/api/v1/admin/partners", body)
    assert status == 503 and "apiKey" not in reply
    assert stack.db["partners"].count_documents({"name": "half"}) == 0
    assert stack.db["subscriptions"].count_documents({}) == 0


def test_3_invalid_admin_bodies_are_not_counted_as_rejected_events(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    ingest = function("ingest")
    key = stack.store().create("p", "https://p.example/h", []).api_key
    added: list[str] = []
    real = metrics.add_metric

    def add_metric(name: str, **kw: Any) -> None:
        added.append(name)
        real(name=name, **kw)

    monkeypatch.setattr(metrics, "add_metric", add_metric)
    admin_bad = api_event("{not json", path="/api/v1/admin/partners", headers={"X-Admin-Key": ADMIN_KEY})
    assert ingest(admin_bad)["statusCode"] == 400
    assert not {"EventsRejected", "Rejected_invalid_body"} & set(added)
    assert ingest(api_event("{not json", key))["statusCode"] == 400  # a producer's bad body counts
    assert {"EventsRejected", "Rejected_invalid_body"} <= set(added)


def test_4_ingest_logs_through_the_powertools_logger() -> None:
    import webhooks.ingest.enqueue
    import webhooks.observability

    assert getattr(webhooks.ingest.enqueue, "logger") is webhooks.observability.logger  # noqa: B009


def test_5_a_database_outage_is_a_503_on_every_route(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    monkeypatch.setenv(
        "MONGO_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200&connectTimeoutMS=200"
    )
    ingest = function("ingest")
    for path, headers in (
        ("/api/v1/admin/partners", {"X-Admin-Key": ADMIN_KEY}),
        ("/api/v1/deliveries", {"X-API-Key": "pk_whatever"}),
        ("/api/v1/admin/event-types", {"X-Admin-Key": ADMIN_KEY}),
    ):
        result = ingest(api_event(None, method="GET", path=path, headers=headers))
        assert result["statusCode"] == 503, (path, result)
        assert json.loads(result["body"]) == {"error": "Service temporarily unavailable, please retry"}


def test_6_recover_is_bounded_and_reads_the_events_in_one_query(
    stack: Stack, admin: Any, monkeypatch: pytest.MonkeyPatch
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
    status, body = admin("POST", f"/api/v1/admin/partners/{pid}/recover", {"since": since.isoformat()})
    assert status == 202 and len(body["enqueued"]) == 3 and body["remaining"] == 2
    assert single_reads == []  # no query per event
    assert len(drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))) == 3


def test_7_a_partner_deleted_while_its_delivery_is_parked_drops_it(
    stack: Stack, delivery: Delivery, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webhooks.delivery.parked import ParkedDeliveries
    from webhooks.partners.model import PartnerNotFound
    from webhooks.partners.store import PartnerStore

    receiver = receiver_factory()
    pid = stack.store().create("parked", receiver.url, ["order.*"]).partner.id
    assert stack.store().disable_endpoint(pid, "test")
    real_get = PartnerStore.get

    def deleted_meanwhile(self: Any, partner_id: str) -> Any:
        if partner_id == pid:
            raise PartnerNotFound(partner_id)
        return real_get(self, partner_id)

    monkeypatch.setattr(PartnerStore, "get", deleted_meanwhile)  # after the cached read, before the fresh one
    monkeypatch.setattr(PartnerStore, "get_cached", lambda self, partner_id: real_get(self, partner_id))
    delivery.enqueue(pid)
    result, _ = delivery.run()
    assert result == {"batchItemFailures": []}  # settled, not an uncaught error retried forever
    assert ParkedDeliveries(stack.db).count(pid) == 0  # nothing left parked for nobody
    assert receiver.requests == []


def test_8_one_invocation_ending_writes_only_its_own_attempts(
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
