"""`webhooks migrate` on the Node service's own seed documents (its mongoInit.js).

After the migration the partner's API key (the stored ``apiKey`` string) is accepted, its
secret is not, and its webhook arrives signed with its old, non-whsec_ secret both ways.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from webhooks.endpoints.store import EndpointStore
from webhooks.partners.store import PartnerStore
from webhooks_cli.main import main

from conftest import Stack
from support import api_event, receive, sqs_event

# mongoInit.js of the Node service, as it seeds `recart_webhook_db` (no other fields)
NODE_PARTNERS: list[dict[str, Any]] = [
    {
        "name": "Awesome Reviews",
        "webhookUrl": "https://httpbin.org/post",
        "secretKey": "awesome-reviews-secret-123",
        "apiKey": "$2b$10$1YkF7vCWhQpUiE4LRZ3C3uv7vcrZLbKGQIm5/nUlpAGdO.1eKZudm",
        "isActive": True,
    },
    {
        "name": "Shopping Analytics",
        "webhookUrl": "https://postman-echo.com/post",
        "secretKey": "shopping-analytics-key-456",
        "apiKey": "$2b$10$7nHOYH4D3a.GnH10x62Dw.o5OyAG19LRKMeaWMxwEBO1YdXJPK5m2",
        "isActive": True,
    },
    {
        "name": "Inactive Partner",
        "webhookUrl": "https://httpbin.org/status/429",
        "secretKey": "inactive-partner-key-789",
        "apiKey": "i$2b$10$YnCwBgjJ0KjsZF5GG1VgDu/2a.7G7xMh6e1i5yJT.liDf24Vn1EZi",
        "isActive": False,
    },
    {
        "name": "Marketing Tools",
        "webhookUrl": "https://httpbin.org/delay/1",
        "secretKey": "marketing-tools-key-abc",
        "apiKey": "$2b$10$AK7RKd1LKpBe8ZJ5zDJe4uL0Pfh/q4YoIXcQXcIXhXcSUBPDZDtK6",
        "isActive": True,
    },
]
NODE_SUBSCRIPTIONS = [
    ("Awesome Reviews", "order.created", True),
    ("Awesome Reviews", "order.fulfilled", True),
    ("Shopping Analytics", "order.created", True),
    ("Inactive Partner", "order.created", True),
    ("Marketing Tools", "order.created", False),
    ("Marketing Tools", "customer.created", True),
]


def seed_node_database(stack: Stack) -> dict[str, Any]:
    stack.db["partners"].insert_many([dict(p) for p in NODE_PARTNERS])
    ids = {d["name"]: d["_id"] for d in stack.db["partners"].find()}
    stack.db["subscriptions"].insert_many(
        [
            {"partnerId": ids[name], "eventType": event, "isActive": active}
            for name, event, active in NODE_SUBSCRIPTIONS
        ]
    )
    return ids


def run_migrate(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    code = main(["migrate", "--json", *args])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)  # type: ignore[no-any-return]


def test_migrate_takes_the_node_seed_and_its_partners_work_with_their_old_secrets(
    stack: Stack, function: Any, receiver_factory: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_node_database(stack)
    awesome = NODE_PARTNERS[0]

    dry = run_migrate(capsys, "--dry-run")
    assert dry["dryRun"] is True and len(dry["hashedApiKeys"]) == 4
    assert stack.db["partners"].count_documents({"apiKey": {"$exists": True}}) == 4  # nothing changed

    report = run_migrate(capsys)
    assert sorted(report["hashedApiKeys"]) == sorted(str(i) for i in ids.values())
    assert report["problems"] == [] and report["partners"] == 4 and report["subscriptions"] == 6
    assert len(report["legacySecrets"]) == 4 and len(report["secretMayBeUsedAsApiKey"]) == 4
    assert len(report["bcryptLookingKeys"]) == 3
    assert stack.db["partners"].count_documents({"apiKey": {"$exists": True}}) == 0
    doc = stack.db["partners"].find_one({"name": "Awesome Reviews"})
    assert doc is not None and doc["apiKeyHash"] == hashlib.sha256(awesome["apiKey"].encode()).hexdigest()
    again = run_migrate(capsys)  # idempotent
    assert again["hashedApiKeys"] == [] and again["alreadyMigrated"] == 4 and again["problems"] == []

    # the partner's endpoint, moved to a local receiver (tests never reach outside addresses)
    receiver = receiver_factory()
    stack.db["partners"].update_one({"_id": ids["Awesome Reviews"]}, {"$set": {"webhookUrl": receiver.url}})

    ingest = function("ingest")
    body = json.dumps([{"eventType": "order.created", "data": {"orderId": "1234"}}])
    assert ingest(api_event(body, awesome["apiKey"]))["statusCode"] == 202
    refused = ingest(api_event(body, awesome["secretKey"]))  # how Node producers authenticated
    assert refused["statusCode"] == 401

    events_queue = stack.url("EVENTS_QUEUE_URL")
    assert function("dispatch")(sqs_event(receive(stack.sqs, events_queue, 1), events_queue)) == {
        "batchItemFailures": []
    }
    delivery_queue = stack.url("DELIVERY_QUEUE_URL")
    deliveries = receive(stack.sqs, delivery_queue, 2)  # Awesome Reviews and Shopping Analytics
    assert len(deliveries) == 2
    by_partner = {json.loads(m["Body"])["partnerId"]: m for m in deliveries}
    mine = [by_partner[str(ids["Awesome Reviews"])]]
    assert function("deliver")(sqs_event(mine, delivery_queue)) == {"batchItemFailures": []}
    [got] = receiver.wait_for(1)
    expected = hmac.new(awesome["secretKey"].encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Recart-Signature-256"] == expected
    # Standard Webhooks with a legacy secret: keyed with its UTF-8 bytes (as whsec_ of them)
    import base64

    legacy_as_whsec = "whsec_" + base64.b64encode(awesome["secretKey"].encode()).decode()
    assert Webhook(legacy_as_whsec).verify(got.body, got.headers)["data"] == {"orderId": "1234"}


def test_migrate_lists_what_it_cannot_take_and_changes_nothing_else(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_node_database(stack)
    stack.db["partners"].insert_one({"name": "", "webhookUrl": "https://x.example", "isActive": True})
    stack.db["partners"].insert_one(
        {
            "name": "Twin",
            "webhookUrl": "https://t.example",
            "secretKey": "s",
            "apiKey": NODE_PARTNERS[1]["apiKey"],
        }
    )
    stack.db["subscriptions"].insert_one(
        {"partnerId": "not-an-id", "eventType": "Bad Type", "isActive": "yes"}
    )
    report = run_migrate(capsys)
    problems = {p.get("problem") for p in report["problems"]}
    assert "name missing or not a string" in problems
    assert "no API key (apiKey or apiKeyHash)" in problems
    assert "another partner already holds this API key" in problems
    assert "partnerId names no partner" in problems and "isActive is not a boolean" in problems
    assert any("is not a valid pattern" in str(p) for p in problems)
    assert len(report["hashedApiKeys"]) == 4  # the seed's partners still migrated
    twin = stack.db["partners"].find_one({"name": "Twin"})
    assert twin is not None and "apiKey" in twin  # left for an operator, not dropped
    assert stack.db["subscriptions"].count_documents({}) == 7
    assert set(ids)  # the seed is intact


def test_migrate_makes_every_index_with_the_deployments_log_lifetime(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index made with the default 30 days would refuse the functions' own 7-day one, and
    with it every delivery-log write."""
    from webhooks.store.delivery_log import DeliveryLog

    monkeypatch.setenv("DELIVERY_LOG_TTL_DAYS", "7")
    report = run_migrate(capsys)
    assert "deliveryAttempts (TTL, by partner, by event)" in report["indexes"]
    ttl = {
        name: spec.get("expireAfterSeconds")
        for name, spec in stack.db["deliveryAttempts"].index_information().items()
    }
    assert ttl["timestamp_1"] == 7 * 86400
    DeliveryLog(stack.db, 7).ensure_indexes()  # what the deliver function does: no conflict
    collections = set(stack.db.list_collection_names())
    wanted = {"partners", "subscriptions", "idempotencyKeys", "deliveryAttempts", "deliveryStats", "events"}
    assert wanted | {"parkedDeliveries", "rateLimits", "revisions", "eventTypes"} <= collections


def test_migrate_marks_the_plain_keys_it_hashes_as_legacy_until_they_are_rotated(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_node_database(stack)
    every = sorted(str(i) for i in ids.values())
    assert sorted(run_migrate(capsys, "--dry-run")["legacyApiKeys"]) == every
    assert stack.db["partners"].count_documents({"apiKeyLegacy": True}) == 0  # a dry run changes nothing
    assert sorted(run_migrate(capsys)["legacyApiKeys"]) == every
    assert stack.db["partners"].count_documents({"apiKeyLegacy": True}) == 4
    assert sorted(run_migrate(capsys)["legacyApiKeys"]) == every  # still listed on the next run
    code = main(["partners", "show", str(ids["Awesome Reviews"])])
    assert code == 0 and json.loads(capsys.readouterr().out)["apiKeyLegacy"] is True
    # a rotation clears the mark (rotate-api-key's $unset); the partner is then no longer listed
    stack.db["partners"].update_one({"_id": ids["Awesome Reviews"]}, {"$unset": {"apiKeyLegacy": ""}})
    assert str(ids["Awesome Reviews"]) not in run_migrate(capsys)["legacyApiKeys"]


def test_migrate_checks_the_type_of_every_partner_field_it_reads_and_the_cli_still_manages_them(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_node_database(stack)
    stack.db["partners"].insert_many(
        [
            {**NODE_PARTNERS[0], "name": "Dated", "apiKey": "k1", "createdAt": "2024-01-01"},
            {**NODE_PARTNERS[0], "name": "Secrets", "apiKey": "k2", "previousSecrets": "x"},
            {**NODE_PARTNERS[0], "name": "Headers", "apiKey": "k3", "headers": ["X-A: b"]},
            {**NODE_PARTNERS[0], "_id": "legacy-7", "name": "Stringly", "apiKey": "k4"},
        ]
    )
    stack.db["subscriptions"].insert_one(
        {"partnerId": "legacy-7", "eventType": "order.created", "isActive": True}
    )
    report = run_migrate(capsys)
    by_partner: dict[str, list[str]] = {}
    for problem in report["problems"]:
        by_partner.setdefault(problem["partnerId"], []).append(problem["problem"])
    ids = {d["name"]: str(d["_id"]) for d in stack.db["partners"].find()}
    assert by_partner[ids["Dated"]] == ["createdAt is str, not a date-time (read as absent until fixed)"]
    assert by_partner[ids["Secrets"]] == [
        "previousSecrets is str, not a list of {secretKey, expiresAt} (read as absent until fixed)"
    ]
    assert by_partner[ids["Headers"]] == [
        "headers is list, not an object of strings (read as absent until fixed)"
    ]
    assert by_partner["legacy-7"][0].startswith("_id is a string, not an ObjectId")
    assert len(by_partner) == 4  # the seed's partners, and the subscription naming legacy-7, are fine

    assert main(["partners", "list", "--json"]) == 0
    out, err = capsys.readouterr()
    listed = {p["name"] for p in json.loads(out)}
    assert listed == {p["name"] for p in NODE_PARTNERS} | {"Stringly"}
    assert all(f"skipped {ids[name]}" in err for name in ("Dated", "Secrets", "Headers"))
    for name in ("Dated", "legacy-7"):
        partner_id = ids.get(name, name)
        assert main(["partners", "deactivate", partner_id]) == 0
        assert json.loads(capsys.readouterr().out)["isActive"] is False
        assert main(["partners", "delete", partner_id]) == 0
        assert json.loads(capsys.readouterr().out) == {"deleted": partner_id}
    assert stack.db["partners"].count_documents({"name": {"$in": ["Dated", "Stringly"]}}) == 0
    assert stack.db["subscriptions"].count_documents({"partnerId": "legacy-7"}) == 0


def test_migrate_gives_each_node_partner_its_first_endpoint_without_changing_a_document(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = seed_node_database(stack)
    report = run_migrate(capsys)
    assert sorted(report["firstEndpoints"]) == sorted(f"ep_{i}" for i in ids.values())
    assert report["endpoints"] == 0 and report["problems"] == []
    before = {d["_id"]: d for d in stack.db["partners"].find()}
    subscriptions_before = sorted(map(repr, stack.db["subscriptions"].find()))

    again = run_migrate(capsys)  # idempotent: the same first endpoints, nothing written
    assert again["firstEndpoints"] == report["firstEndpoints"] and again["problems"] == []
    assert {d["_id"]: d for d in stack.db["partners"].find()} == before
    assert sorted(map(repr, stack.db["subscriptions"].find())) == subscriptions_before

    endpoints = EndpointStore(stack.db, PartnerStore(stack.db, cache_ttl=0))
    for seeded in NODE_PARTNERS:
        partner_id = str(ids[seeded["name"]])
        (first,) = endpoints.of_partner(partner_id)
        assert first.id == f"ep_{partner_id}" and first.first
        assert first.webhook_url == seeded["webhookUrl"]
        assert first.signing_secrets() == [seeded["secretKey"]]  # the same signatures
        assert first.headers == ()
        expected = sorted(e for n, e, active in NODE_SUBSCRIPTIONS if n == seeded["name"] and active)
        assert list(first.events) == expected


def test_migrate_lists_endpoints_and_subscriptions_whose_owner_is_gone(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_node_database(stack)
    stack.db["endpoints"].insert_one({"_id": "ep_orphan", "partnerId": "gone", "url": 7})
    stack.db["subscriptions"].insert_one(
        {"partnerId": stack.db["partners"].find_one()["_id"], "endpointId": "ep_nowhere", "eventType": "a.b"}
    )
    report = run_migrate(capsys)
    assert report["endpoints"] == 1
    problems = {(p.get("endpointId") or p.get("subscriptionId"), p["problem"]) for p in report["problems"]}
    assert ("ep_orphan", "partnerId names no partner") in problems
    assert any(key == "ep_orphan" and problem.startswith("url is int") for key, problem in problems)
    assert any(problem == "endpointId names no endpoint" for _, problem in problems)
