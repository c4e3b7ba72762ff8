"""Input the API refuses with a clear 400 (or keeps intact): UTF-8 data, dates UTC cannot hold, strict booleans,
names with control characters, unknown query parameters."""

from __future__ import annotations

import re
from typing import Any

import pytest
from bson import ObjectId

from webhooks.api.app import openapi_document

from conftest import Stack
from support import drain


def queued(stack: Stack, name: str = "EVENTS_QUEUE_URL") -> list[dict[str, Any]]:
    return drain(stack.sqs, stack.url(name))


def test_non_ascii_event_data_stays_utf8_on_the_queue(stack: Stack, api: Any) -> None:
    key = stack.store().create("p", "https://p.example/h", []).api_key
    text = "é" * 100_000  # 200 KB as UTF-8; 600 KB as \\u escapes, over the 256 KiB message limit
    status, body = api.publish(key, [{"eventType": "order.created", "data": {"note": text, "zh": "秘密"}}])
    assert status == 202, body
    [message] = queued(stack)
    assert "é" in message["Body"] and "秘密" in message["Body"] and "\\u00e9" not in message["Body"]
    assert len(message["Body"].encode()) < 262_144


@pytest.mark.parametrize(
    "query",
    [{"since": "0001-01-01T00:00:00+01:00"}, {"until": "9999-12-31T23:59:59-01:00"}],
)
def test_dates_outside_what_utc_can_hold_are_a_400_not_a_500(
    stack: Stack, api: Any, query: dict[str, str]
) -> None:
    created = stack.store().create("p", "https://p.example/h", [])
    pid = created.partner.id
    status, body, _ = api("GET", f"/api/v1/admin/partners/{pid}/deliveries", query=query)
    assert status == 400 and "out of range" in body["error"], body
    status, body, _ = api("GET", "/api/v1/deliveries", query=query, headers={"X-API-Key": created.api_key})
    assert status == 400 and "out of range" in body["error"], body
    status, body, _ = api(
        "POST", f"/api/v1/admin/partners/{pid}/recover", {"since": "0001-01-01T00:00:00+01:00"}
    )
    assert status == 400 and "out of range" in body["error"], body


def test_is_active_must_be_a_boolean_not_a_string(stack: Stack, api: Any) -> None:
    pid = stack.store().create("p", "https://p.example/h", []).partner.id
    status, _, _ = api("PATCH", f"/api/v1/admin/partners/{pid}", {"isActive": "false"})
    assert status == 400
    assert stack.store().get(pid).is_active


PARTNERS = "/api/v1/admin/partners"


@pytest.mark.parametrize(
    "name", ["evil\x1b[2J\x1b[Hname", "nul\x00name", "rtl\u202egnp.exe", "iso\u2066x", "c1\x9bx"]
)
def test_partner_names_refuse_control_and_bidi_override_characters(stack: Stack, api: Any, name: str) -> None:
    status, refused, _ = api("POST", PARTNERS, {"name": name, "webhookUrl": "https://a.example/h"})
    assert status == 400, refused
    assert "control or bidirectional-override characters" in refused["error"]
    partner_id = stack.store().create("fine", "https://a.example/h", []).partner.id
    status, refused, _ = api("PATCH", f"{PARTNERS}/{partner_id}", {"name": name})
    assert status == 400, refused
    assert stack.db["partners"].count_documents({}) == 1
    # names in any script stay welcome
    status, created, _ = api(
        "POST", PARTNERS, {"name": "Café Ünal 東京 שלום", "webhookUrl": "https://a.example/h"}
    )
    assert status == 201, created


BODIES: dict[str, Any] = {
    "postEvents": [{"eventType": "order.created", "data": {}}],
    "createPartner": {"name": "n", "webhookUrl": "https://a.example/h"},
    "updatePartner": {"name": "n"},
    "addSubscriptions": {"events": ["order.created"]},
    "removeSubscriptions": {"events": ["order.created"]},
    "replay": {"eventId": "event_0"},
    "recover": {"since": "2026-01-01T00:00:00Z"},
    "registerEventType": {"schema": {}},
    "createPartnerEndpoint": {"url": "https://a.example/h", "events": ["order.created"]},
    "createOwnEndpoint": {"url": "https://a.example/h", "events": ["order.created"]},
    "updatePartnerEndpoint": {"description": "d"},
    "updateOwnEndpoint": {"description": "d"},
    "replayToOwnEndpoint": {"eventId": "event_0"},
    "recoverOwnEndpoint": {"since": "2026-01-01T00:00:00Z"},
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
            status, body, _ = api(
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
    status, body, _ = api(
        "GET", "/api/v1/admin/stats", query={"windo": "day"}, headers={"X-Admin-Key": "wrong"}
    )
    assert status == 401, body
    status, body, _ = api("GET", "/api/v1/admin/stats", query={"windo": "day"})
    assert (status, body) == (
        400,
        {"error": "Invalid query. Errors: windo: Extra inputs are not permitted"},
    )
    status, body, _ = api("GET", "/api/v1/admin/stats", query={"window": "day"})
    assert status == 200, body
