"""The second probe's findings about partner data and the admin API (issue 30: 3, 5, 6, 7,
11 and legacy API keys): each test is named after what it proves and runs the real ingest
handler against moto's SQS server and SecantusDB, with real HTTP receivers for deliveries."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from standardwebhooks.webhooks import Webhook

from webhooks.api.app import openapi_document
from webhooks.delivery.signing import hash_api_key
from webhooks.models import Event, new_event_id, utc_timestamp
from webhooks.store.event_store import EventStore
from webhooks_cli.main import main

from conftest import Delivery, Stack
from support import api_event, drain

ADMIN_KEY = "second-probe-admin"


@pytest.fixture
def api(stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """call(method, path, body, headers, query) -> (status, body): the ingest handler with
    the admin key sent unless the headers say otherwise."""
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    loaded: list[Any] = []

    def call(
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        if not loaded:
            loaded.append(function("ingest"))
        event = api_event(
            json.dumps(body) if body is not None else None,
            method=method,
            path=path,
            headers={"X-Admin-Key": ADMIN_KEY, **(headers or {})},
        )
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
        result = loaded[0](event)
        return result["statusCode"], json.loads(result["body"])

    return call


PARTNERS = "/api/v1/admin/partners"


def legacy_partner(stack: Stack, **fields: Any) -> Any:
    """A partner document as an older writer left it: the given fields as they are."""
    doc = {
        "name": "legacy",
        "webhookUrl": "https://legacy.example/hook",
        "apiKeyHash": hash_api_key(f"key-{ObjectId()}"),
        "secretKey": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "isActive": True,
        "createdAt": datetime.now(UTC),
        "updatedAt": datetime.now(UTC),
        **fields,
    }
    return stack.db["partners"].insert_one(doc).inserted_id


# --- 3: legacy documents with fields of other types ----------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"createdAt": "2024-01-01T00:00:00Z"},
        {"previousSecrets": "x"},
        {"headers": ["X-A: b"]},
        {"isActive": "false", "timeoutMs": "5000"},
    ],
    ids=["string-createdAt", "string-previousSecrets", "list-headers", "string-flags"],
)
def test_partner_list_and_stats_skip_and_report_a_document_with_fields_of_the_wrong_type(
    stack: Stack, api: Any, fields: dict[str, Any]
) -> None:
    good = stack.store().create("good", "https://good.example/h", ["order.created"]).partner.id
    bad = str(legacy_partner(stack, **fields))
    status, listed = api("GET", PARTNERS)
    assert status == 200, listed
    assert [p["partnerId"] for p in listed["partners"]] == [good]
    [skipped] = listed["skipped"]
    assert skipped["partnerId"] == bad
    assert {p.split(" ")[0] for p in skipped["problems"]} == set(fields)
    status, stats = api("GET", "/api/v1/admin/stats")
    assert status == 200, stats
    assert [p["partnerId"] for p in stats["partners"]] == [good]
    assert [s["partnerId"] for s in stats["skipped"]] == [bad]
    # the document itself stays readable by id, its problems named
    status, shown = api("GET", f"{PARTNERS}/{bad}")
    assert status == 200, shown
    assert shown["problems"] == skipped["problems"]


def test_a_partner_with_a_string_id_can_be_read_deactivated_and_deleted_through_the_api(
    stack: Stack, api: Any
) -> None:
    key = "legacy-string-id-key"
    for string_id in ("partner-7", str(ObjectId())):  # a free string, and one that looks like an ObjectId
        legacy_partner(stack, _id=string_id, apiKeyHash=hash_api_key(key), name=f"legacy {string_id}")
        stack.db["subscriptions"].insert_one(
            {"partnerId": string_id, "eventType": "order.created", "isActive": True}
        )
        status, shown = api("GET", f"{PARTNERS}/{string_id}")
        assert status == 200, shown
        assert shown["events"] == ["order.created"]
        status, changed = api("PATCH", f"{PARTNERS}/{string_id}", {"isActive": False})
        assert (status, changed["isActive"]) == (200, False)
        # the deactivated key no longer publishes
        status, refused = api(
            "POST", "/api/v1/events", [{"eventType": "order.created", "data": {}}], {"X-API-Key": key}
        )
        assert status == 401, refused
        status, deleted = api("DELETE", f"{PARTNERS}/{string_id}")
        assert (status, deleted) == (200, {"deleted": string_id})
        assert stack.db["partners"].count_documents({"_id": string_id}) == 0
        assert stack.db["subscriptions"].count_documents({"partnerId": string_id}) == 0


# --- 5: an emergency rotation retires every earlier secret ---------------------------------


def test_rotating_with_no_overlap_retires_every_earlier_secret_at_once(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    receiver = receiver_factory()
    created = stack.store().create("rotated", receiver.url, ["order.created"])
    partner_id, original = created.partner.id, created.secret_key
    second = stack.store().rotate_secret(partner_id, timedelta(hours=24))
    newest = stack.store().rotate_secret(partner_id, timedelta(0))
    delivery.enqueue(partner_id)
    delivery.run()
    [got] = receiver.wait_for(1)
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    Webhook(newest).verify(got.body, got.headers)
    for retired in (original, second):
        with pytest.raises(Exception, match="No matching signature"):
            Webhook(retired).verify(got.body, got.headers)


# --- 6: replay only to subscribed partners unless forced -----------------------------------


def test_replay_to_a_partner_not_subscribed_to_the_events_type_is_refused_unless_forced(
    stack: Stack, api: Any
) -> None:
    store = stack.store()
    subscribed = store.create("shop", "https://shop.example/h", ["order.*"]).partner.id
    other = store.create("other tenant", "https://other.example/h", ["cart.updated"]).partner.id
    event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={"n": 1})
    EventStore(stack.db).save([event])

    status, refused = api("POST", f"{PARTNERS}/{other}/replay", {"eventId": event.eventId})
    assert status == 409, refused
    assert "not subscribed to 'order.created'" in refused["error"] and "force" in refused["error"]
    assert drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL")) == []

    status, sent = api("POST", f"{PARTNERS}/{subscribed}/replay", {"eventId": event.eventId})
    assert (status, sent["enqueued"]) == (202, [event.eventId])
    status, forced = api("POST", f"{PARTNERS}/{other}/replay", {"eventId": event.eventId, "force": True})
    assert (status, forced["enqueued"]) == (202, [event.eventId])
    queued = [json.loads(m["Body"])["partnerId"] for m in drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))]
    assert sorted(queued) == sorted([subscribed, other])


# --- 7: names refuse control and bidi characters -------------------------------------------


@pytest.mark.parametrize(
    "name", ["evil\x1b[2J\x1b[Hname", "nul\x00name", "rtl\u202egnp.exe", "iso\u2066x", "c1\x9bx"]
)
def test_partner_names_refuse_control_and_bidi_override_characters(stack: Stack, api: Any, name: str) -> None:
    status, refused = api("POST", PARTNERS, {"name": name, "webhookUrl": "https://a.example/h"})
    assert status == 400, refused
    assert "control or bidirectional-override characters" in refused["error"]
    partner_id = stack.store().create("fine", "https://a.example/h", []).partner.id
    status, refused = api("PATCH", f"{PARTNERS}/{partner_id}", {"name": name})
    assert status == 400, refused
    assert stack.db["partners"].count_documents({}) == 1
    # names in any script stay welcome
    status, created = api(
        "POST", PARTNERS, {"name": "Café Ünal 東京 שלום", "webhookUrl": "https://a.example/h"}
    )
    assert status == 201, created


# --- 11: unknown query parameters are a 400 on every route ---------------------------------

BODIES: dict[str, Any] = {
    "postEvents": [{"eventType": "order.created", "data": {}}],
    "createPartner": {"name": "n", "webhookUrl": "https://a.example/h"},
    "updatePartner": {"name": "n"},
    "addSubscriptions": {"events": ["order.created"]},
    "removeSubscriptions": {"events": ["order.created"]},
    "replay": {"eventId": "event_0"},
    "recover": {"since": "2026-01-01T00:00:00Z"},
    "registerEventType": {"schema": {}},
}


def test_every_route_in_the_openapi_document_refuses_an_unknown_query_parameter(
    stack: Stack, api: Any
) -> None:
    key = stack.store().create("caller", "https://a.example/h", ["order.created"]).api_key
    paths = openapi_document()["paths"]
    walked = 0
    for template, operations in paths.items():
        path = re.sub(
            r"\{[^}]+\}", lambda m: "order.created" if m[0] == "{name}" else str(ObjectId()), template
        )
        for method, described in operations.items():
            declared = {p["name"] for p in described.get("parameters", []) if p["in"] == "query"}
            status, body = api(
                method.upper(),
                path,
                BODIES.get(described["operationId"]),
                headers={"X-API-Key": key},
                query={"unknownParam": "1", **dict.fromkeys(declared & {"limit"}, "5")},
            )
            assert status == 400, (method, template, body)
            assert "unknownParam: Extra inputs are not permitted" in body["error"], (method, template, body)
            walked += 1
    assert walked >= 20  # the document was walked, not an empty dict
    assert stack.db["partners"].count_documents({}) == 1  # nothing ran past the refusal


def test_an_unknown_query_parameter_is_refused_after_credentials_and_declared_ones_pass(
    stack: Stack, api: Any
) -> None:
    status, body = api("GET", "/api/v1/admin/stats", query={"windo": "day"}, headers={"X-Admin-Key": "wrong"})
    assert status == 401, body
    status, body = api("GET", "/api/v1/admin/stats", query={"windo": "day"})
    assert (status, body) == (
        400,
        {"error": "Invalid query. Errors: windo: Extra inputs are not permitted"},
    )
    status, body = api("GET", "/api/v1/admin/stats", query={"window": "day"})
    assert status == 200, body


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


def test_partners_list_escapes_control_and_bidi_characters_a_stored_name_holds(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy_partner(stack, name="evil\x1b[2J\x1b]0;owned\x07\u202egnp.exe")
    assert main(["partners", "list"]) == 0
    out = capsys.readouterr().out
    assert "evil\\x1b[2J\\x1b]0;owned\\x07\\u202egnp.exe" in out
    assert not any(ch in out for ch in "\x1b\x07\u202e")
