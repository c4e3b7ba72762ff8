"""The console's API: the delivery stats the deliver function keeps with its log, the
admin aggregate over them, the partner's own event and endpoint routes, and the console's
files (ingest handler, real SQS and MongoDB servers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.delivery.parked import ParkedDeliveries
from webhooks.endpoints.store import EndpointStore
from webhooks.models import DeliveryMessage, Event, new_event_id, utc_timestamp
from webhooks.store.delivery_log import AttemptRecord, DeliveryLog
from webhooks.store.event_store import EventStore

from conftest import Stack
from support import ADMIN_KEY, IngestApi

ADMIN = {"X-Admin-Key": ADMIN_KEY}


@pytest.fixture
def call(api: IngestApi) -> Any:
    """call(path, headers, query) -> the handler's own result for a GET, the admin key only in
    ``headers``."""

    def send(path: str, headers: dict[str, str] | None = None, query: dict[str, str] | None = None) -> Any:
        return api.handle("GET", path, headers=headers, query=query, admin=False)

    return send


def attempt(
    partner_id: str, outcome: str, latency: float, at: datetime, event_id: str = "event_1"
) -> AttemptRecord:
    status = 200 if outcome == "delivered" else 500
    return AttemptRecord(
        event_id, "order.created", partner_id, 1, outcome, status, latency, None, None, b"", at
    )


def test_stats_count_each_outcome_per_minute_and_partner_with_latency_percentiles(
    stack: Stack, call: Any
) -> None:
    a = stack.store().create("alpha", "https://a.example/h", ["order.*"]).partner.id
    b = stack.store().create("beta", "https://b.example/h", ["order.*"]).partner.id
    log = DeliveryLog(stack.db)
    now = datetime.now(UTC)
    records = [attempt(a, "delivered", 8, now) for _ in range(9)] + [attempt(a, "delivered", 400, now)]
    records += [attempt(b, "retry", 30, now), attempt(b, "dead_lettered", 30, now - timedelta(minutes=5))]
    records += [attempt(a, "delivered", 8, now - timedelta(hours=3))]  # outside the hour
    log.flush([r.document() for r in records])

    reply = call("/api/v1/admin/stats", ADMIN, {"window": "hour"})
    assert reply["statusCode"] == 200, reply["body"]
    stats = json.loads(reply["body"])
    assert stats["bucketSeconds"] == 60 and len(stats["series"]) == 60
    assert sum(p["delivered"] for p in stats["series"]) == 10
    assert stats["series"][-1]["delivered"] == 10 and stats["series"][-1]["failed"] == 1
    assert stats["series"][-6]["deadLettered"] == 1
    by_name = {p["name"]: p for p in stats["partners"]}
    assert (by_name["alpha"]["delivered"], by_name["alpha"]["failed"]) == (10, 0)
    assert by_name["alpha"]["latencyP50Ms"] == 10.0  # 8 ms falls in the 5-10 ms bucket
    assert by_name["alpha"]["latencyP95Ms"] == 500.0  # the one slow attempt
    assert (by_name["beta"]["failed"], by_name["beta"]["deadLettered"]) == (1, 1)
    assert by_name["beta"]["endpoint"]["status"] == "enabled"

    day = json.loads(call("/api/v1/admin/stats", ADMIN, {"window": "day"})["body"])
    assert day["bucketSeconds"] == 3600 and sum(p["delivered"] for p in day["series"]) == 11


def test_stats_need_the_admin_key_and_a_known_window(call: Any) -> None:
    assert call("/api/v1/admin/stats")["statusCode"] == 401
    assert call("/api/v1/admin/stats", ADMIN, {"window": "week"})["statusCode"] == 400


def test_the_overview_shows_a_partners_worst_endpoint_and_every_parked_delivery(
    stack: Stack, call: Any
) -> None:
    store = stack.store()
    shop = store.create("shop", "https://s.example/h", ["order.*"]).partner
    store.create("calm", "https://c.example/h", ["order.*"])
    endpoints = EndpointStore(stack.db, store)
    failing, _ = endpoints.create(shop.id, {"url": "https://f.example/h"}, ["order.*"])
    disabled, _ = endpoints.create(shop.id, {"url": "https://d.example/h"}, ["order.*"])
    endpoints.add_failures(failing, 3, datetime.now(UTC))
    endpoints.add_failures(disabled, 1, datetime.now(UTC))
    assert endpoints.disable(disabled, "failing for 5 days")
    parked = ParkedDeliveries(stack.db)
    for _ in range(2):
        event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
        parked.park(DeliveryMessage(partnerId=shop.id, endpointId=disabled.id, event=event))

    stats = json.loads(call("/api/v1/admin/stats", ADMIN, {"window": "hour"})["body"])
    by_name = {p["name"]: p for p in stats["partners"]}
    # the first endpoint is healthy; the disabled second one is what the overview shows
    assert by_name["shop"]["endpoint"]["status"] == "disabled"
    assert by_name["shop"]["endpoint"]["disabledReason"] == "failing for 5 days"
    assert by_name["shop"]["parked"] == 2
    assert (by_name["calm"]["endpoint"]["status"], by_name["calm"]["parked"]) == ("enabled", 0)
    # enabled again (its deliveries unparked elsewhere), the longest failure streak shows next
    endpoints.enable(shop.id, disabled.id)
    stack.db["parkedDeliveries"].delete_many({})
    stats = json.loads(call("/api/v1/admin/stats", ADMIN, {"window": "hour"})["body"])
    shop_now = {p["name"]: p for p in stats["partners"]}["shop"]
    assert (shop_now["endpoint"]["status"], shop_now["endpoint"]["consecutiveFailures"]) == ("enabled", 3)
    assert shop_now["parked"] == 0


def test_a_partner_reads_its_own_event_and_endpoint_and_not_anothers(stack: Stack, call: Any) -> None:
    mine = stack.store().create("mine", "https://m.example/h", ["order.*"])
    other = stack.store().create("other", "https://o.example/h", ["order.*"])
    now = datetime.now(UTC)
    DeliveryLog(stack.db).flush(
        [
            attempt(mine.partner.id, "delivered", 5, now, "event_mine").document(),
            attempt(other.partner.id, "retry", 5, now, "event_theirs").document(),
        ]
    )
    key = {"X-API-Key": mine.api_key}
    own = call("/api/v1/deliveries/events/event_mine", key)
    assert own["statusCode"] == 200 and json.loads(own["body"])["deliveries"][0]["outcome"] == "delivered"
    refused = call("/api/v1/deliveries/events/event_theirs", key)
    assert refused["statusCode"] == 404 and "event_theirs" in json.loads(refused["body"])["error"]
    assert call("/api/v1/deliveries/events/event_mine")["statusCode"] == 401
    endpoint = json.loads(call("/api/v1/deliveries/endpoint", key)["body"])
    assert endpoint["name"] == "mine" and endpoint["endpoint"]["consecutiveFailures"] == 0


def test_the_console_files_and_only_them(call: Any) -> None:
    page = call("/console")
    headers = {**page.get("headers", {}), **{k: v[0] for k, v in page.get("multiValueHeaders", {}).items()}}
    assert page["statusCode"] == 200 and "text/html" in headers["Content-Type"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "app.js" in page["body"]
    script = call("/console/app.js")
    assert script["statusCode"] == 200 and "route()" in script["body"]
    assert call("/console/")["statusCode"] == 301
    assert call("/console/..%2F..%2Fapp.py")["statusCode"] == 404
    assert call("/console/app.py")["statusCode"] == 404


def test_an_events_attempts_come_with_the_event_its_type_time_and_data(stack: Stack, call: Any) -> None:
    mine = stack.store().create("mine", "https://m.example/h", ["order.*"])
    event = Event(
        eventId="event_withdata",
        eventType="order.created",
        timestamp="2026-12-05T07:00:00.000Z",
        data={"n": 1},
    )
    EventStore(stack.db).save([event])
    DeliveryLog(stack.db).flush(
        [attempt(mine.partner.id, "delivered", 5, datetime.now(UTC), "event_withdata").document()]
    )
    admin = json.loads(call("/api/v1/admin/events/event_withdata/deliveries", ADMIN)["body"])
    assert admin["event"] == event.model_dump()
    assert [a["eventId"] for a in admin["deliveries"]] == ["event_withdata"]
    own = json.loads(call("/api/v1/deliveries/events/event_withdata", {"X-API-Key": mine.api_key})["body"])
    assert own["event"] == event.model_dump()
    gone = json.loads(call("/api/v1/admin/events/event_notstored/deliveries", ADMIN)["body"])
    assert gone["event"] is None and gone["deliveries"] == []


def test_a_partner_counts_what_is_dead_lettered_and_not_delivered_since(stack: Stack, call: Any) -> None:
    p = stack.store().create("counted", "https://c.example/h", ["order.*"]).partner.id
    now = datetime.now(UTC)
    DeliveryLog(stack.db).flush(
        [
            attempt(p, "dead_lettered", 5, now - timedelta(minutes=3), "event_lost").document(),
            attempt(p, "dead_lettered", 5, now - timedelta(minutes=2), "event_replayed").document(),
            attempt(p, "delivered", 5, now - timedelta(minutes=1), "event_replayed").document(),
            attempt(p, "retry", 5, now, "event_retrying").document(),
        ]
    )
    found = json.loads(call(f"/api/v1/admin/partners/{p}", ADMIN)["body"])
    assert found["deadLettered"] == 1


def test_the_operator_pages_through_every_partners_attempts_latest_first(stack: Stack, call: Any) -> None:
    a = stack.store().create("first", "https://a.example/h", ["order.*"]).partner.id
    b = stack.store().create("second", "https://b.example/h", ["order.*"]).partner.id
    now = datetime.now(UTC)
    # written out of time order, as concurrent deliver invocations write the log
    DeliveryLog(stack.db).flush(
        [
            attempt(b, "retry", 5, now - timedelta(seconds=1), "event_b1").document(),
            attempt(a, "delivered", 5, now, "event_a2").document(),
            attempt(a, "delivered", 5, now - timedelta(seconds=2), "event_a0").document(),
        ]
    )
    first = json.loads(call("/api/v1/admin/deliveries", ADMIN, {"limit": "2"})["body"])
    assert [d["eventId"] for d in first["deliveries"]] == ["event_a2", "event_b1"]
    rest = json.loads(
        call("/api/v1/admin/deliveries", ADMIN, {"limit": "2", "cursor": first["nextCursor"]})["body"]
    )
    assert [d["eventId"] for d in rest["deliveries"]] == ["event_a0"] and rest["nextCursor"] is None
    failed = json.loads(call("/api/v1/admin/deliveries", ADMIN, {"status": "failed"})["body"])
    assert [d["partnerId"] for d in failed["deliveries"]] == [b]
    assert call("/api/v1/admin/deliveries")["statusCode"] == 401
    assert call("/api/v1/admin/deliveries", ADMIN, {"stauts": "failed"})["statusCode"] == 400
