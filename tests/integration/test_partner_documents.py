"""Partner documents an older writer left (fields of other types, string ids, hostile names) stay readable and manageable."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId

from webhooks.delivery.signing import hash_api_key
from webhooks_cli.main import main

from conftest import Stack

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
    status, listed, _ = api("GET", PARTNERS)
    assert status == 200, listed
    assert [p["partnerId"] for p in listed["partners"]] == [good]
    [skipped] = listed["skipped"]
    assert skipped["partnerId"] == bad
    assert {p.split(" ")[0] for p in skipped["problems"]} == set(fields)
    status, stats, _ = api("GET", "/api/v1/admin/stats")
    assert status == 200, stats
    assert [p["partnerId"] for p in stats["partners"]] == [good]
    assert [s["partnerId"] for s in stats["skipped"]] == [bad]
    # the document itself stays readable by id, its problems named
    status, shown, _ = api("GET", f"{PARTNERS}/{bad}")
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
        status, shown, _ = api("GET", f"{PARTNERS}/{string_id}")
        assert status == 200, shown
        assert shown["events"] == ["order.created"]
        status, changed, _ = api("PATCH", f"{PARTNERS}/{string_id}", {"isActive": False})
        assert (status, changed["isActive"]) == (200, False)
        # the deactivated key no longer publishes
        status, refused, _ = api(
            "POST", "/api/v1/events", [{"eventType": "order.created", "data": {}}], {"X-API-Key": key}
        )
        assert status == 401, refused
        status, deleted, _ = api("DELETE", f"{PARTNERS}/{string_id}")
        assert (status, deleted) == (200, {"deleted": string_id})
        assert stack.db["partners"].count_documents({"_id": string_id}) == 0
        assert stack.db["subscriptions"].count_documents({"partnerId": string_id}) == 0


def test_partners_list_escapes_control_and_bidi_characters_a_stored_name_holds(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    legacy_partner(stack, name="evil\x1b[2J\x1b]0;owned\x07\u202egnp.exe")
    assert main(["partners", "list"]) == 0
    out = capsys.readouterr().out
    assert "evil\\x1b[2J\\x1b]0;owned\\x07\\u202egnp.exe" in out
    assert not any(ch in out for ch in "\x1b\x07\u202e")
