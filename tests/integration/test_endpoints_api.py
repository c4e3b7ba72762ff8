"""Endpoints over HTTP: the operator's routes under /api/v1/admin/partners/{id}/endpoints and
the partner's own under /api/v1/endpoints (its API key or a portal token). The ingest
handler over SecantusDB and moto's SQS server: what each route answers, what it stores, and
the delivery messages and operational events it puts on the real queues."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.delivery.parked import ParkedDeliveries
from webhooks.endpoints.model import first_endpoint_id
from webhooks.endpoints.store import EndpointStore
from webhooks.models import DeliveryMessage, Event, new_event_id, utc_timestamp
from webhooks.partners.store import PartnerStore
from webhooks.store.delivery_log import DeliveryLog
from webhooks.store.event_store import EventStore

from conftest import Stack
from support import IngestApi, drain

PARTNERS = "/api/v1/admin/partners"
OWN = "/api/v1/endpoints"


def endpoints_of(partner_id: str) -> str:
    return f"{PARTNERS}/{partner_id}/endpoints"


def key(api_key: str) -> dict[str, str]:
    return {"X-API-Key": api_key}


def stored_event(stack: Stack, event_type: str, data: dict[str, Any] | None = None) -> Event:
    event = Event(eventId=new_event_id(), eventType=event_type, timestamp=utc_timestamp(), data=data or {})
    EventStore(stack.db).save([event])
    return event


def deliveries(stack: Stack) -> list[dict[str, Any]]:
    """The delivery queue's messages, as JSON bodies (taken off the queue)."""
    return [json.loads(m["Body"]) for m in drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))]


def operational(stack: Stack) -> list[tuple[str, dict[str, Any], str]]:
    """The events queue's events as (type, data, the raw message body)."""
    found = []
    for message in drain(stack.sqs, stack.url("EVENTS_QUEUE_URL")):
        for event in json.loads(message["Body"])["events"]:
            found.append((event["eventType"], event["data"], message["Body"]))
    return found


@pytest.fixture
def shop(stack: Stack) -> tuple[str, str]:
    """A partner (id, API key) subscribed to order.* on its first endpoint."""
    created = stack.store().create("shop", "https://shop.example/h", ["order.*"])
    return created.partner.id, created.api_key


def add(api: IngestApi, partner_id: str, **body: Any) -> dict[str, Any]:
    status, created, _ = api("POST", endpoints_of(partner_id), {"url": "https://b.example/h", **body})
    assert status == 201, created
    return dict(created)


def attempt(event: Event, partner_id: str, outcome: str = "delivered") -> dict[str, Any]:
    """A delivery log entry: ``event`` was sent to the partner's first endpoint."""
    return {
        "eventId": event.eventId,
        "eventType": event.eventType,
        "partnerId": partner_id,
        "attempt": 1,
        "outcome": outcome,
        "statusCode": 200,
        "latencyMs": 1.0,
        "errorClass": None,
        "errorMessage": None,
        "responseBody": "",
        "timestamp": datetime.now(UTC),
    }


@pytest.fixture
def log_output(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the API's log lines would print (Lambda sends stdout to CloudWatch)."""
    from webhooks.observability import logger

    written = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", written)
    return written


def test_the_operator_creates_lists_reads_updates_and_deletes_a_partners_endpoints(
    stack: Stack, api: IngestApi, shop: tuple[str, str], log_output: io.StringIO
) -> None:
    pid, _ = shop
    created = add(
        api,
        pid,
        events=["order.created"],
        filter={"data": {"value": {"$gte": 100}}},
        retrySchedule=[5, 300],
        headers={"X-Tenant": "t-1"},
        description="big orders",
    )
    secret, eid = created["secretKey"], created["endpointId"]
    assert secret.startswith("whsec_") or len(secret) >= 24
    assert (created["events"], created["retrySchedule"], created["first"]) == (
        ["order.created"],
        [5, 300],
        False,
    )

    status, listed, _ = api("GET", endpoints_of(pid))
    assert status == 200
    assert [e["endpointId"] for e in listed["endpoints"]] == [first_endpoint_id(pid), eid]
    assert listed["endpoints"][0]["events"] == ["order.*"] and listed["endpoints"][0]["first"] is True
    status, one, _ = api("GET", f"{endpoints_of(pid)}/{eid}")
    assert status == 200 and one["headers"] == {"X-Tenant": "***"}
    assert one["health"]["parkedDeliveries"] == 0
    # the secret is in the create answer only: not in a read, nor in any log line
    assert secret not in json.dumps(listed) + json.dumps(one)
    assert "endpoint created" in log_output.getvalue()  # the log was read, and holds no secret
    assert secret not in log_output.getvalue()

    status, changed, _ = api(
        "PATCH", f"{endpoints_of(pid)}/{eid}", {"events": ["order.*", "cart.updated"], "filter": None}
    )
    assert status == 200, changed
    assert (changed["events"], changed["filter"]) == (["cart.updated", "order.*"], None)
    assert changed["retrySchedule"] == [5, 300]  # what the body leaves out stays

    status, gone, _ = api("DELETE", f"{endpoints_of(pid)}/{eid}")
    assert (status, gone) == (200, {"deleted": eid})
    assert api("GET", f"{endpoints_of(pid)}/{eid}").status == 404


def test_the_first_endpoint_cannot_be_deleted_and_unknown_ids_are_404(
    api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, _ = shop
    status, refused, _ = api("DELETE", f"{endpoints_of(pid)}/{first_endpoint_id(pid)}")
    assert status == 409 and "first endpoint" in refused["error"]
    assert api("GET", f"{endpoints_of(pid)}/ep_nope").status == 404
    assert api("PATCH", f"{endpoints_of(pid)}/ep_nope", {"description": "x"}).status == 404
    assert api("POST", f"{endpoints_of(pid)}/ep_nope/rotate-secret").status == 404
    assert api("GET", endpoints_of("0" * 24)).status == 404
    status, missing, _ = api("POST", endpoints_of("0" * 24), {"url": "https://b.example/h", "events": ["a"]})
    assert status == 404, missing


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"filter": {"data": {"value": {"$gtx": 1}}}}, "filter: data.value.$gtx"),
        ({"filter": {"nothing": 1}}, "filter: nothing"),
        ({"retrySchedule": [5, 8 * 86_400]}, "retrySchedule"),
        ({"events": []}, "events"),
        ({"headers": {"Content-Type": "x"}}, "headers"),
    ],
)
def test_a_bad_filter_schedule_or_setting_is_a_400_naming_its_path_and_nothing_is_stored(
    stack: Stack, api: IngestApi, shop: tuple[str, str], body: dict[str, Any], named: str
) -> None:
    pid, api_key = shop
    full = {"url": "https://b.example/h", "events": ["order.created"], **body}
    for path, headers, admin in ((endpoints_of(pid), None, True), (OWN, key(api_key), False)):
        status, refused, _ = api("POST", path, full, headers=headers, admin=admin)
        assert status == 400, refused
        assert f"{named}" in refused["error"], refused
    assert stack.db["endpoints"].count_documents({}) == 0


def test_a_bad_filter_in_an_update_is_a_400_naming_its_path(api: IngestApi, shop: tuple[str, str]) -> None:
    pid, _ = shop
    eid = add(api, pid, events=["order.created"])["endpointId"]
    status, refused, _ = api("PATCH", f"{endpoints_of(pid)}/{eid}", {"filter": {"data": {"n": {"$in": 3}}}})
    assert status == 400 and "filter: data.n.$in:" in refused["error"], refused
    assert api("PATCH", f"{endpoints_of(pid)}/{eid}", {"url": None}).status == 400


def test_rotating_an_endpoints_secret_keeps_the_old_one_for_the_overlap_and_announces_it_without_the_secret(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, _ = shop
    created = add(api, pid, events=["order.created"])
    eid, old = created["endpointId"], created["secretKey"]
    status, rotated, _ = api("POST", f"{endpoints_of(pid)}/{eid}/rotate-secret", {"overlapHours": 2})
    assert status == 200, rotated
    assert (rotated["endpointId"], rotated["previousSecretValidHours"]) == (eid, 2)
    assert rotated["secretKey"] != old
    endpoint = EndpointStore(stack.db, stack.store()).get(pid, eid)
    assert endpoint.signing_secrets() == [rotated["secretKey"], old]
    announced = operational(stack)
    assert [(t, d["partnerId"], d["endpointId"]) for t, d, _ in announced] == [
        ("endpoint.secret.rotated", pid, eid)
    ]
    assert old not in announced[0][2] and rotated["secretKey"] not in announced[0][2]


def test_sending_a_test_puts_a_delivery_for_that_endpoint_on_the_queue(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, _ = shop
    eid = add(api, pid, events=["order.created"])["endpointId"]
    status, sent, _ = api("POST", f"{endpoints_of(pid)}/{eid}/test")
    assert status == 202, sent
    assert (sent["partnerId"], sent["endpointId"], len(sent["enqueued"])) == (pid, eid, 1)
    [message] = deliveries(stack)
    assert (message["partnerId"], message["endpointId"]) == (pid, eid)
    assert message["event"]["eventType"] == "webhook.test"
    assert message["event"]["eventId"] == sent["enqueued"][0]
    # the first endpoint's message is what it was before endpoints existed: no endpointId
    assert api("POST", f"{endpoints_of(pid)}/{first_endpoint_id(pid)}/test").status == 202
    [first] = deliveries(stack)
    assert "endpointId" not in first and first["partnerId"] == pid


def test_enabling_an_endpoint_sends_what_it_parked_and_only_that_and_announces_it(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, _ = shop
    eid = add(api, pid, events=["order.created"])["endpointId"]
    store = EndpointStore(stack.db, stack.store())
    assert store.disable(store.get(pid, eid), "test")
    parked = ParkedDeliveries(stack.db)
    mine = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
    firsts = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
    parked.park(DeliveryMessage(partnerId=pid, endpointId=eid, event=mine))
    parked.park(DeliveryMessage(partnerId=pid, event=firsts))  # the first endpoint's: stays

    status, enabled, _ = api("POST", f"{endpoints_of(pid)}/{eid}/enable")
    assert status == 200, enabled
    assert (enabled["endpointId"], enabled["replayed"], enabled["remainingParked"]) == (eid, 1, 0)
    assert enabled["health"]["status"] == "enabled"
    [message] = deliveries(stack)
    assert (message["endpointId"], message["event"]["eventId"]) == (eid, mine.eventId)
    assert parked.count(pid, eid) == 0 and parked.count(pid) == 1
    assert [(t, d["endpointId"]) for t, d, _ in operational(stack)] == [("endpoint.enabled", eid)]
    # enabling one that is enabled announces nothing
    assert api("POST", f"{endpoints_of(pid)}/{eid}/enable").status == 200
    assert operational(stack) == []


def test_a_partner_manages_its_own_endpoints_with_its_api_key_or_a_portal_token(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, api_key = shop
    status, created, _ = api(
        "POST",
        OWN,
        {"url": "https://b.example/h", "events": ["order.created"]},
        headers=key(api_key),
        admin=False,
    )
    assert status == 201 and created["partnerId"] == pid and created["secretKey"]
    eid = created["endpointId"]
    status, listed, _ = api("GET", OWN, headers=key(api_key), admin=False)
    assert status == 200
    assert [e["endpointId"] for e in listed["endpoints"]] == [first_endpoint_id(pid), eid]
    assert created["secretKey"] not in json.dumps(listed)

    status, issued, _ = api("POST", f"{PARTNERS}/{pid}/portal-tokens")
    assert status == 201, issued
    bearer = {"Authorization": f"Bearer {issued['token']}"}
    status, changed, _ = api("PATCH", f"{OWN}/{eid}", {"description": "staging"}, headers=bearer, admin=False)
    assert (status, changed["description"]) == (200, "staging")
    status, rotated, _ = api("POST", f"{OWN}/{eid}/rotate-secret", headers=bearer, admin=False)
    assert status == 200 and rotated["secretKey"] != created["secretKey"]
    status, sent, _ = api("POST", f"{OWN}/{eid}/test", headers=bearer, admin=False)
    assert status == 202 and [m["endpointId"] for m in deliveries(stack)] == [eid]
    assert api("DELETE", f"{OWN}/{first_endpoint_id(pid)}", headers=bearer, admin=False).status == 409
    assert api("DELETE", f"{OWN}/{eid}", headers=bearer, admin=False).status == 200
    assert api("GET", OWN, admin=False).status == 401


def test_another_partners_endpoint_is_a_404_on_every_self_service_route(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, _ = shop
    theirs = add(api, pid, events=["order.created"])["endpointId"]
    other = stack.store().create("other", "https://o.example/h", ["order.*"])
    event = stored_event(stack, "order.created")
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    calls: list[tuple[str, str, Any]] = [
        ("GET", "", None),
        ("PATCH", "", {"description": "mine now"}),
        ("DELETE", "", None),
        ("POST", "/rotate-secret", None),
        ("POST", "/enable", None),
        ("POST", "/test", None),
        ("POST", "/replay", {"eventId": event.eventId}),
        ("POST", "/recover", {"since": since}),
    ]
    for target in (theirs, first_endpoint_id(pid)):
        for method, tail, body in calls:
            status, refused, _ = api(
                method, f"{OWN}/{target}{tail}", body, headers=key(other.api_key), admin=False
            )
            assert (status, refused) == (404, {"error": "Endpoint not found"}), (method, tail)
    assert deliveries(stack) == [] and operational(stack) == []
    assert EndpointStore(stack.db, stack.store()).get(pid, theirs).description is None


def test_a_partner_replays_its_own_event_to_one_endpoint_and_nobody_elses(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, api_key = shop
    eid = add(api, pid, events=["order.created"])["endpointId"]
    other = (
        stack.store().create("other", "https://o.example/h", ["invoice.*", "endpoint.disabled"]).partner.id
    )
    stack.store().subscribe(pid, ["endpoint.disabled"])
    own_event = stored_event(stack, "order.created")
    shipped = stored_event(stack, "order.shipped")  # the partner's (order.*), not this endpoint's
    theirs = stored_event(stack, "invoice.paid")
    about_other = stored_event(stack, "endpoint.disabled", {"partnerId": other})
    DeliveryLog(stack.db).flush([attempt(own_event, pid), attempt(shipped, pid), attempt(theirs, other)])

    def replay(endpoint_id: str, event: Event) -> Any:
        return api(
            "POST",
            f"{OWN}/{endpoint_id}/replay",
            {"eventId": event.eventId},
            headers=key(api_key),
            admin=False,
        )

    status, sent, _ = replay(eid, own_event)
    assert (status, sent["endpointId"], sent["enqueued"]) == (202, eid, [own_event.eventId])
    assert [(m["endpointId"], m["event"]["eventId"]) for m in deliveries(stack)] == [(eid, own_event.eventId)]
    status, refused, _ = replay(eid, shipped)
    assert status == 409 and "not subscribed to 'order.shipped'" in refused["error"]
    for foreign in (theirs, about_other):  # another tenant's: as if it did not exist
        status, refused, _ = replay(first_endpoint_id(pid), foreign)
        assert status == 404 and "of yours" in refused["error"], refused
    status, refused, _ = api(
        "POST",
        f"{OWN}/{eid}/replay",
        {"eventId": own_event.eventId, "force": True},
        headers=key(api_key),
        admin=False,
    )
    assert status == 400 and "force" in refused["error"]
    assert deliveries(stack) == []


def test_self_service_replay_needs_the_event_in_the_partners_delivery_log_not_only_its_type(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, api_key = shop  # subscribed to order.*
    never_sent = stored_event(stack, "order.created")  # e.g. from before it subscribed, or filtered out
    sent_to_other = stored_event(stack, "order.created")
    other = stack.store().create("other", "https://o.example/h", ["order.*"]).partner.id
    DeliveryLog(stack.db).flush([attempt(sent_to_other, other)])
    for event in (never_sent, sent_to_other):
        status, refused, _ = api(
            "POST",
            f"{OWN}/{first_endpoint_id(pid)}/replay",
            {"eventId": event.eventId},
            headers=key(api_key),
            admin=False,
        )
        assert status == 404 and "of yours" in refused["error"], refused
    assert deliveries(stack) == []
    # the operator's replay keeps its rules: the partner is subscribed to the type
    assert api("POST", f"{PARTNERS}/{pid}/replay", {"eventId": never_sent.eventId}).status == 202


def test_self_service_replay_finds_an_event_parked_for_one_of_the_partners_endpoints(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, api_key = shop
    parked = stored_event(stack, "order.created")  # owed to a disabled endpoint, never attempted
    ParkedDeliveries(stack.db).park(DeliveryMessage(partnerId=pid, event=parked))
    path = f"{OWN}/{first_endpoint_id(pid)}/replay"
    status, sent, _ = api("POST", path, {"eventId": parked.eventId}, headers=key(api_key), admin=False)
    assert status == 202, sent
    assert [d["event"]["eventId"] for d in deliveries(stack)] == [parked.eventId]


def test_a_header_value_sent_back_masked_as_read_is_refused_and_the_real_one_kept(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, api_key = shop
    eid = add(api, pid, events=["order.*"], headers={"Authorization": "Bearer real"})["endpointId"]
    read = api("GET", f"{endpoints_of(pid)}/{eid}").body
    assert read["headers"] == {"Authorization": "***"}
    status, refused, _ = api("PATCH", f"{endpoints_of(pid)}/{eid}", {"headers": read["headers"]})
    assert status == 400 and "Authorization" in refused["error"] and "masked" in refused["error"]
    assert stack.db["endpoints"].find_one({"_id": eid})["headers"] == {"Authorization": "Bearer real"}


def test_a_partner_recovers_its_failures_at_one_endpoint_since_a_time(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, api_key = shop
    eid = add(api, pid, events=["order.*"])["endpointId"]
    at_it, at_first, old = (stored_event(stack, "order.created") for _ in range(3))
    now = datetime.now(UTC)

    def dead(event: Event, endpoint_id: str | None, at: datetime) -> dict[str, Any]:
        doc = {
            "eventId": event.eventId,
            "eventType": event.eventType,
            "partnerId": pid,
            "attempt": 3,
            "outcome": "dead_lettered",
            "statusCode": 500,
            "latencyMs": 1.0,
            "errorClass": None,
            "errorMessage": "HTTP 500",
            "responseBody": "",
            "timestamp": at,
        }
        return {**doc, "endpointId": endpoint_id} if endpoint_id else doc

    DeliveryLog(stack.db).flush(
        [dead(at_it, eid, now), dead(at_first, None, now), dead(old, eid, now - timedelta(days=2))]
    )
    since = (now - timedelta(hours=1)).isoformat()
    status, sent, _ = api("POST", f"{OWN}/{eid}/recover", {"since": since}, headers=key(api_key), admin=False)
    assert status == 202, sent
    assert (sent["endpointId"], sent["enqueued"], sent["remaining"]) == (eid, [at_it.eventId], 0)
    assert [(m["endpointId"], m["event"]["eventId"]) for m in deliveries(stack)] == [(eid, at_it.eventId)]
    # the partner-level recover sends each failure to the endpoint it failed at
    status, both, _ = api("POST", f"{PARTNERS}/{pid}/recover", {"since": since})
    assert status == 202 and sorted(both["enqueued"]) == sorted([at_it.eventId, at_first.eventId])
    sent_to = {(m.get("endpointId"), m["event"]["eventId"]) for m in deliveries(stack)}
    assert sent_to == {(eid, at_it.eventId), (None, at_first.eventId)}
    status, refused, _ = api(
        "POST", f"{OWN}/{eid}/recover", {"since": "yesterday"}, headers=key(api_key), admin=False
    )
    assert status == 400 and "since" in refused["error"]


def test_the_partner_level_replay_goes_to_each_endpoint_owed_the_event(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, _ = shop
    eid = add(api, pid, events=["order.created"])["endpointId"]
    add(api, pid, events=["cart.*"])  # not owed an order
    event = stored_event(stack, "order.created")
    status, sent, _ = api("POST", f"{PARTNERS}/{pid}/replay", {"eventId": event.eventId})
    assert (status, sent["enqueued"], sent["failed"]) == (202, [event.eventId], [])
    assert "endpointId" not in sent  # the partner-level answer, as before endpoints
    assert sorted((m.get("endpointId") or "") for m in deliveries(stack)) == sorted(["", eid])


def test_an_admin_replay_of_a_platform_event_about_another_partner_is_refused_without_force(
    stack: Stack, api: IngestApi
) -> None:
    store: PartnerStore = stack.store()
    a = store.create("a", "https://a.example/h", ["endpoint.disabled"]).partner.id
    b = store.create("b", "https://b.example/h", ["endpoint.disabled"]).partner.id
    about_a = stored_event(stack, "endpoint.disabled", {"partnerId": a})
    status, refused, _ = api("POST", f"{PARTNERS}/{b}/replay", {"eventId": about_a.eventId})
    assert status == 409 and "force" in refused["error"], refused
    assert deliveries(stack) == []
    assert api("POST", f"{PARTNERS}/{a}/replay", {"eventId": about_a.eventId}).status == 202
    assert [m["partnerId"] for m in deliveries(stack)] == [a]
    assert api("POST", f"{PARTNERS}/{b}/replay", {"eventId": about_a.eventId, "force": True}).status == 202
    assert [m["partnerId"] for m in deliveries(stack)] == [b]


def test_resends_to_an_unknown_endpoint_are_404_and_to_an_inactive_partner_409(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, api_key = shop
    eid = add(api, pid, events=["order.created"])["endpointId"]
    for action in ("enable", "test"):
        status, missing, _ = api("POST", f"{endpoints_of(pid)}/ep_nope/{action}")
        assert (status, missing) == (404, {"error": "Endpoint not found"}), action
    status, refused, _ = api("POST", f"{endpoints_of(pid)}/{eid}/rotate-secret", {"overlapHours": -1})
    assert status == 400 and "overlapHours" in refused["error"]
    assert stack.store().set_active(pid, False).is_active is False
    status, refused, _ = api("POST", f"{endpoints_of(pid)}/{eid}/test")
    assert status == 409 and "inactive" in refused["error"]
    assert deliveries(stack) == []


def own_call(api: IngestApi, api_key: str, method: str, path: str, body: Any) -> tuple[int, Any]:
    status, answer, _ = api(method, path, body, headers=key(api_key), admin=False)
    return status, answer


def test_without_receive_scopes_a_partner_subscribes_its_endpoints_to_any_type(
    stack: Stack, api: IngestApi
) -> None:
    status, made, _ = api("POST", PARTNERS, {"name": "bare", "webhookUrl": "https://n.example/h"})
    assert status == 201 and made["events"] == [] and made["receiveScopes"] is None
    status, created = own_call(
        api, made["apiKey"], "POST", OWN, {"url": "https://b.example/h", "events": ["invoice.paid", "*"]}
    )
    assert status == 201, created
    assert created["events"] == ["*", "invoice.paid"]


def test_self_service_subscribes_only_within_the_partners_receive_scopes_and_the_platforms_own_types(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, api_key = shop
    assert api("PATCH", f"{PARTNERS}/{pid}", {"receiveScopes": ["order.*"]}).status == 200
    first = first_endpoint_id(pid)
    for events in (["*"], ["invoice.paid"], ["order.created", "cart.*"], ["orders.x"]):
        status, refused = own_call(
            api, api_key, "POST", OWN, {"url": "https://b.example/h", "events": events}
        )
        assert status == 403, (events, refused)
        assert "receive scopes" in refused["error"] and events[-1] in refused["error"]
        status, refused = own_call(api, api_key, "PATCH", f"{OWN}/{first}", {"events": events})
        assert status == 403, (events, refused)
    assert [e["events"] for e in api("GET", endpoints_of(pid)).body["endpoints"]] == [["order.*"]]

    # within the grant (order.* covers order.x and order.x.*), and the platform's own types
    allowed = ["order.created", "order.eu.*", "order.*", "endpoint.*", "message.attempt.exhausted"]
    status, created = own_call(api, api_key, "POST", OWN, {"url": "https://b.example/h", "events": allowed})
    assert status == 201, created
    status, changed = own_call(
        api, api_key, "PATCH", f"{OWN}/{created['endpointId']}", {"events": ["order.paid"]}
    )
    assert (status, changed["events"]) == (200, ["order.paid"])
    # the operator's routes are not limited
    assert api("PATCH", f"{endpoints_of(pid)}/{first}", {"events": ["*"]}).status == 200
    # and what an endpoint has already may be sent back as it was read, outside the scopes
    status, kept = own_call(api, api_key, "PATCH", f"{OWN}/{first}", {"events": ["*"], "description": "d"})
    assert (status, kept["events"]) == (200, ["*"])
    status, refused = own_call(api, api_key, "PATCH", f"{OWN}/{first}", {"events": ["*", "invoice.paid"]})
    assert status == 403 and "invoice.paid" in refused["error"] and "*," not in refused["error"]


def test_receive_scopes_set_by_the_operator_are_the_grant_and_null_removes_them(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, api_key = shop
    status, partner, _ = api("PATCH", f"{PARTNERS}/{pid}", {"receiveScopes": ["*"]})
    assert (status, partner["receiveScopes"]) == (200, ["*"])
    status, created = own_call(api, api_key, "POST", OWN, {"url": "https://b.example/h", "events": ["*"]})
    assert status == 201, created
    status, partner, _ = api("PATCH", f"{PARTNERS}/{pid}", {"receiveScopes": ["invoice.*"]})
    body = {"url": "https://b.example/h", "events": ["invoice.paid"]}
    assert own_call(api, api_key, "POST", OWN, body)[0] == 201  # beyond order.*: the scopes decide
    status, refused = own_call(api, api_key, "POST", OWN, {**body, "events": ["order.created"]})
    assert status == 403 and "order.created" in refused["error"]
    status, partner, _ = api("PATCH", f"{PARTNERS}/{pid}", {"receiveScopes": None})
    assert status == 200 and partner["receiveScopes"] is None
    assert "receiveScopes" not in stack.db.partners.find_one({"name": "shop"})
    assert own_call(api, api_key, "POST", OWN, {**body, "events": ["order.created"]})[0] == 201
    assert own_call(api, api_key, "POST", OWN, body)[0] == 201  # unset: any type
    status, made, _ = api(
        "POST", PARTNERS, {"name": "n", "webhookUrl": "https://n.example/h", "receiveScopes": ["a.*"]}
    )
    assert status == 201 and made["receiveScopes"] == ["a.*"]
    assert api("PATCH", f"{PARTNERS}/{pid}", {"receiveScopes": []}).status == 400


def test_the_partner_level_secret_rotation_announces_the_first_endpoints_rotation_without_the_secret(
    stack: Stack, api: IngestApi, shop: tuple[str, str]
) -> None:
    pid, _ = shop
    status, rotated, _ = api("POST", f"{PARTNERS}/{pid}/rotate-secret", {"overlapHours": 3})
    assert status == 200, rotated
    announced = operational(stack)
    assert [(t, d["partnerId"], d["endpointId"], d["previousSecretValidHours"]) for t, d, _ in announced] == [
        ("endpoint.secret.rotated", pid, first_endpoint_id(pid), 3)
    ]
    assert rotated["secretKey"] not in announced[0][2]
