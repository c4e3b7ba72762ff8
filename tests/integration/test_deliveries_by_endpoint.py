"""One endpoint's delivery log (``?endpointId=`` on the partner's own and the operator's
routes, ``--endpoint`` in the CLI) and the CLI's per-endpoint replay and recover: the ingest
handler and the command line over SecantusDB and moto's SQS server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.endpoints.model import first_endpoint_id
from webhooks.models import Event, new_event_id, utc_timestamp
from webhooks.store.delivery_log import DeliveryLog
from webhooks.store.event_store import EventStore

from conftest import Stack
from support import IngestApi, drain
from support import run_cli as run

PARTNERS = "/api/v1/admin/partners"


def logged(
    partner_id: str, event_id: str, endpoint_id: str | None, at: datetime, outcome: str = "delivered"
) -> dict[str, Any]:
    """A delivery log entry; ``endpoint_id`` None: written before endpoints (no endpointId)."""
    doc = {
        "eventId": event_id,
        "eventType": "order.created",
        "partnerId": partner_id,
        "attempt": 1,
        "outcome": outcome,
        "statusCode": 200 if outcome == "delivered" else 500,
        "latencyMs": 1.0,
        "errorClass": None,
        "errorMessage": None,
        "responseBody": "",
        "timestamp": at,
    }
    return {**doc, "endpointId": endpoint_id} if endpoint_id else doc


def stored_event(stack: Stack) -> Event:
    event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
    EventStore(stack.db).save([event])
    return event


@pytest.fixture
def shop(stack: Stack, api: IngestApi) -> tuple[str, str, str]:
    """A partner (id, API key, its second endpoint's id), both endpoints on order.*."""
    created = stack.store().create("shop", "https://shop.example/h", ["order.*"])
    pid = created.partner.id
    status, second, _ = api(
        "POST", f"{PARTNERS}/{pid}/endpoints", {"url": "https://b.example/h", "events": ["order.*"]}
    )
    assert status == 201, second
    return pid, created.api_key, second["endpointId"]


@pytest.fixture
def log(stack: Stack, shop: tuple[str, str, str]) -> dict[str, str]:
    """Attempts of the shop's to each endpoint, one from before endpoints, and another
    partner's; newest first: name -> eventId."""
    pid, _, eid = shop
    other = stack.store().create("other", "https://o.example/h", ["order.*"]).partner.id
    now = datetime.now(UTC)
    ids = {name: new_event_id() for name in ("second", "first", "legacy", "failed_second", "other")}
    DeliveryLog(stack.db).flush(
        [
            logged(pid, ids["second"], eid, now),
            logged(pid, ids["first"], first_endpoint_id(pid), now - timedelta(seconds=1)),
            logged(pid, ids["legacy"], None, now - timedelta(seconds=2)),
            logged(pid, ids["failed_second"], eid, now - timedelta(seconds=3), "dead_lettered"),
            logged(other, ids["other"], None, now - timedelta(seconds=4)),
        ]
    )
    return ids


def events_in(page: dict[str, Any]) -> list[str]:
    return [d["eventId"] for d in page["deliveries"]]


def test_a_partners_own_log_filtered_to_an_endpoint_shows_only_its_attempts_the_first_with_the_older_ones(
    stack: Stack, api: IngestApi, shop: tuple[str, str, str], log: dict[str, str]
) -> None:
    pid, api_key, eid = shop

    def own(headers: dict[str, str], **query: str) -> Any:
        status, page, _ = api("GET", "/api/v1/deliveries", headers=headers, query=query, admin=False)
        assert status == 200, page
        return page

    key = {"X-API-Key": api_key}
    assert events_in(own(key, endpointId=eid)) == [log["second"], log["failed_second"]]
    first = own(key, endpointId=first_endpoint_id(pid))
    assert events_in(first) == [log["first"], log["legacy"]]
    assert {d["endpointId"] for d in first["deliveries"]} == {first_endpoint_id(pid)}
    # with the other filters, and paged
    assert events_in(own(key, endpointId=eid, status="failed")) == [log["failed_second"]]
    assert events_in(own(key, endpointId=eid, eventId=log["first"])) == []
    assert events_in(own(key, endpointId=first_endpoint_id(pid), eventId=log["legacy"])) == [log["legacy"]]
    page = own(key, endpointId=first_endpoint_id(pid), limit="1")
    assert events_in(page) == [log["first"]] and page["nextCursor"]
    rest = own(key, endpointId=first_endpoint_id(pid), limit="1", cursor=page["nextCursor"])
    assert events_in(rest) == [log["legacy"]] and rest["nextCursor"] is None

    # the portal's bearer token reads the same
    status, issued, _ = api("POST", f"{PARTNERS}/{pid}/portal-tokens")
    assert status == 201, issued
    bearer = {"Authorization": f"Bearer {issued['token']}"}
    assert events_in(own(bearer, endpointId=eid)) == [log["second"], log["failed_second"]]


def test_an_endpoint_id_not_the_partners_is_a_404_on_its_own_log(
    stack: Stack, api: IngestApi, shop: tuple[str, str, str], log: dict[str, str]
) -> None:
    pid, api_key, _ = shop
    other = stack.store().create("third", "https://t.example/h", ["order.*"]).partner.id
    status, theirs, _ = api(
        "POST", f"{PARTNERS}/{other}/endpoints", {"url": "https://t.example/2", "events": ["order.*"]}
    )
    assert status == 201
    for endpoint_id in (theirs["endpointId"], first_endpoint_id(other), "ep_made_up"):
        status, refused, _ = api(
            "GET",
            "/api/v1/deliveries",
            headers={"X-API-Key": api_key},
            query={"endpointId": endpoint_id},
            admin=False,
        )
        assert (status, refused["error"]) == (404, "Endpoint not found"), endpoint_id


def test_the_operators_logs_filter_to_an_endpoint_of_one_partner_or_of_any(
    api: IngestApi, shop: tuple[str, str, str], log: dict[str, str]
) -> None:
    pid, _, eid = shop

    def admin(path: str, **query: str) -> list[str]:
        status, page, _ = api("GET", path, query=query)
        assert status == 200, page
        return events_in(page)

    partner_log = f"{PARTNERS}/{pid}/deliveries"
    assert admin(partner_log, endpointId=eid) == [log["second"], log["failed_second"]]
    assert admin(partner_log, endpointId=first_endpoint_id(pid)) == [log["first"], log["legacy"]]
    # every partner's log: the first endpoint's id names its partner, so the older attempts
    # (no endpointId) of that partner only are its
    assert admin("/api/v1/admin/deliveries", endpointId=eid) == [log["second"], log["failed_second"]]
    assert admin("/api/v1/admin/deliveries", endpointId=first_endpoint_id(pid)) == [
        log["first"],
        log["legacy"],
    ]
    # a deleted endpoint's attempts stay readable to the operator
    assert api("DELETE", f"{PARTNERS}/{pid}/endpoints/{eid}").status == 200
    assert admin(partner_log, endpointId=eid) == [log["second"], log["failed_second"]]
    status, refused, _ = api("GET", partner_log, query={"endpointId": ""})
    assert status == 400 and "endpointId" in json.dumps(refused)


def test_the_endpoint_filter_is_served_by_an_index(stack: Stack, shop: tuple[str, str, str]) -> None:
    delivery_log = DeliveryLog(stack.db)
    delivery_log.ensure_indexes()
    keys = [list(i["key"].items()) for i in stack.db["deliveryAttempts"].list_indexes()]
    assert [("endpointId", 1), ("timestamp", -1), ("_id", -1)] in keys


def test_cli_lists_one_endpoints_attempts(
    shop: tuple[str, str, str], log: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    pid, _, eid = shop
    code, page, err = run(capsys, "deliveries", "list", "--partner", pid, "--endpoint", eid, "--json")
    assert code == 0, err
    assert events_in(page) == [log["second"], log["failed_second"]]
    code, text, err = run(
        capsys, "deliveries", "list", "--partner", pid, "--endpoint", first_endpoint_id(pid)
    )
    assert code == 0, err
    assert log["first"] in text and log["legacy"] in text and log["second"] not in text


def test_cli_replays_an_event_and_recovers_failures_to_one_endpoint_only(
    stack: Stack, api: IngestApi, shop: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    pid, _, eid = shop
    sent_before, failed_at_it, failed_at_first = (stored_event(stack) for _ in range(3))
    now = datetime.now(UTC)
    DeliveryLog(stack.db).flush(
        [
            logged(pid, sent_before.eventId, None, now),
            logged(pid, failed_at_it.eventId, eid, now, "dead_lettered"),
            logged(pid, failed_at_first.eventId, None, now, "dead_lettered"),
        ]
    )

    def queued() -> list[tuple[str | None, str]]:
        messages = drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))
        return [
            (b.get("endpointId"), b["event"]["eventId"]) for b in (json.loads(m["Body"]) for m in messages)
        ]

    replay = ("replay", "--partner", pid, "--endpoint", eid)
    code, sent, err = run(capsys, *replay, "--event-id", sent_before.eventId)
    assert code == 0, err
    assert (sent["endpointId"], sent["enqueued"]) == (eid, [sent_before.eventId])
    assert queued() == [(eid, sent_before.eventId)]  # not to the first endpoint, subscribed too

    since = (now - timedelta(hours=1)).isoformat()
    code, recovered, err = run(capsys, *replay, "--since", since)
    assert code == 0, err
    assert (recovered["endpointId"], recovered["enqueued"]) == (eid, [failed_at_it.eventId])
    assert queued() == [(eid, failed_at_it.eventId)]

    code, _, err = run(capsys, *replay, "--since", since, "--endpoint", "ep_made_up")
    assert code == 1 and "Endpoint not found" in err
    # the operator's rule, not the partner's: an event never sent to the partner goes to an
    # endpoint subscribed to its type; to one that is not, only with --force
    never_sent = stored_event(stack)
    code, sent, err = run(capsys, *replay, "--event-id", never_sent.eventId)
    assert code == 0 and sent["enqueued"] == [never_sent.eventId], err
    assert queued() == [(eid, never_sent.eventId)]
    status, _, _ = api("PATCH", f"{PARTNERS}/{pid}/endpoints/{eid}", {"events": ["invoice.*"]})
    assert status == 200
    code, _, err = run(capsys, *replay, "--event-id", never_sent.eventId)
    assert code == 1 and "not subscribed" in err
    assert queued() == []
    code, sent, err = run(capsys, *replay, "--event-id", never_sent.eventId, "--force")
    assert code == 0 and queued() == [(eid, never_sent.eventId)], err
