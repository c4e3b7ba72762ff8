"""The partner store against a real MongoDB wire-protocol server (SecantusDB)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from webhooks.delivery.signing import hash_api_key
from webhooks.partners.model import PartnerNotFound
from webhooks.partners.store import PartnerStore

from conftest import Stack


def test_create_stores_only_the_key_hash_and_returns_credentials_once(stack: Stack) -> None:
    store = stack.store()
    created = store.create("Acme", "https://acme.example/hooks", ["order.created", "order.*"])
    doc = stack.db.partners.find_one({"name": "Acme"})
    assert doc["apiKeyHash"] == hash_api_key(created.api_key)
    assert created.api_key not in str(doc)  # the plain key is nowhere in the document
    assert "apiKey" not in doc
    assert doc["secretKey"] == created.secret_key and created.secret_key.startswith("whsec_")
    found = store.find_by_api_key(created.api_key)
    assert found is not None and found.id == created.partner.id
    assert store.find_by_api_key("wrong") is None
    assert store.find_by_api_key("") is None
    assert store.subscriptions_of(created.partner.id) == ["order.*", "order.created"]


def test_duplicate_api_key_hash_is_rejected(stack: Stack) -> None:
    store = stack.store()
    store.create("A", "https://a.example", [], api_key="same-key")
    with pytest.raises(DuplicateKeyError):
        store.create("B", "https://b.example", [], api_key="same-key")


def test_indexes_are_created_idempotently(stack: Stack) -> None:
    store = stack.store()
    store.ensure_indexes()
    store.ensure_indexes()
    names = {i["name"] for i in stack.db.subscriptions.list_indexes()}
    assert "eventType_1_isActive_1" in names
    assert any(i.get("unique") for i in stack.db.partners.list_indexes() if i["name"] == "apiKeyHash_1")


def test_subscribers_match_exact_prefix_and_star(stack: Stack) -> None:
    store = stack.store()
    exact = store.create("exact", "https://e.example", ["order.created"]).partner.id
    prefix = store.create("prefix", "https://p.example", ["order.*"]).partner.id
    star = store.create("star", "https://s.example", ["*"]).partner.id
    deep = store.create("deep", "https://d.example", ["order.line.*"]).partner.id
    other = store.create("other", "https://o.example", ["customer.created"]).partner.id
    found = store.subscribers(["order.created", "order.line.added", "customer.created", "ping"])
    assert found["order.created"] == sorted([exact, prefix, star])
    assert found["order.line.added"] == sorted([prefix, star, deep])
    assert found["customer.created"] == sorted([star, other])
    assert found["ping"] == [star]
    assert store.subscribers(["orders.created"])["orders.created"] == [star]  # no false prefix match


def test_wildcards_never_match_the_platforms_own_event_types(stack: Stack) -> None:
    store = stack.store()
    store.create("star", "https://s.example", ["*"])
    store.create("orders", "https://o.example", ["order.*"])
    named = store.create("named", "https://n.example", ["endpoint.disabled"]).partner.id
    namespace = store.create("namespace", "https://ns.example", ["endpoint.*"]).partner.id
    tests = store.create("tests", "https://t.example", ["webhook.*"]).partner.id
    found = store.subscribers(["endpoint.disabled", "endpoint.failing", "webhook.test"])
    assert found["endpoint.disabled"] == sorted([named, namespace])  # `*` is not among them
    assert found["endpoint.failing"] == [namespace]
    assert found["webhook.test"] == [tests]


def test_inactive_partners_and_inactive_subscriptions_are_excluded(stack: Stack) -> None:
    store = stack.store()
    active = store.create("active", "https://a.example", ["order.created"]).partner.id
    gone = store.create("gone", "https://g.example", ["order.created"]).partner.id
    paused = store.create("paused", "https://p.example", ["order.created"]).partner.id
    store.set_active(gone, False)
    stack.db.subscriptions.update_one({"partnerId": ObjectId(paused)}, {"$set": {"isActive": False}})
    assert store.subscribers(["order.created"])["order.created"] == [active]
    key_of_gone = store.create("gone2", "https://g2.example", [], api_key="k-gone").partner.id
    store.set_active(key_of_gone, False)
    assert store.find_by_api_key("k-gone") is None
    store.set_active(key_of_gone, True)
    back = store.find_by_api_key("k-gone")
    assert back is not None and back.id == key_of_gone


def test_subscribe_is_idempotent_and_unsubscribe_removes(stack: Stack) -> None:
    store = stack.store()
    pid = store.create("p", "https://p.example", ["a.b"]).partner.id
    store.subscribe(pid, ["a.b", "c.*"])
    store.subscribe(pid, ["c.*"])
    assert store.subscriptions_of(pid) == ["a.b", "c.*"]
    store.unsubscribe(pid, ["a.b"])
    assert store.subscriptions_of(pid) == ["c.*"]
    assert store.subscribers(["a.b"])["a.b"] == []


def test_rotation_keeps_the_old_secret_until_it_expires(stack: Stack) -> None:
    now = [datetime(2026, 11, 28, 12, 0, tzinfo=UTC)]
    store = PartnerStore(stack.db, cache_ttl=0, clock=lambda: now[0])
    created = store.create("p", "https://p.example", [])
    new = store.rotate_secret(created.partner.id, timedelta(hours=24))
    partner = store.get(created.partner.id)
    assert partner.secret_key == new != created.secret_key
    assert partner.signing_secrets(now[0]) == [new, created.secret_key]
    assert partner.signing_secrets(now[0] + timedelta(hours=25)) == [new]
    # a second rotation keeps both older secrets while they last
    now[0] += timedelta(hours=1)
    newer = store.rotate_secret(created.partner.id, timedelta(hours=24))
    assert store.get(created.partner.id).signing_secrets(now[0]) == [newer, new, created.secret_key]


def test_unknown_and_malformed_ids(stack: Stack) -> None:
    store = stack.store()
    for bad in ("not-an-object-id", "6b0b4094ac1dcf0f7cb0727c"):
        with pytest.raises(PartnerNotFound):
            store.get(bad)
        assert store.get_cached(bad) is None
        with pytest.raises(PartnerNotFound):
            store.set_active(bad, False)


def test_the_cache_serves_repeats_without_the_database(stack: Stack) -> None:
    store = PartnerStore(stack.db, cache_ttl=60)
    store.ensure_indexes()
    created = store.create("p", "https://p.example", ["a.b"], api_key="cached-key")
    assert store.find_by_api_key("cached-key") is not None
    assert store.subscribers(["a.b"])["a.b"] == [created.partner.id]
    stack.db.partners.delete_many({})
    stack.db.subscriptions.delete_many({})
    assert store.find_by_api_key("cached-key") is not None  # from the cache
    assert store.subscribers(["a.b"])["a.b"] == [created.partner.id]
    store.clear_cache()
    assert store.find_by_api_key("cached-key") is None


def test_upsert_by_name_replaces_subscriptions(stack: Stack) -> None:
    store = stack.store()
    first = store.upsert_by_name("n", "https://1.example", ["a.b", "c.d"], api_key="k1", secret_key="s1")
    second = store.upsert_by_name("n", "https://2.example", ["c.d", "e.*"], api_key="k2", secret_key="s2")
    assert first.id == second.id
    assert store.subscriptions_of(first.id) == ["c.d", "e.*"]
    by_k2 = store.find_by_api_key("k2")
    assert store.find_by_api_key("k1") is None and by_k2 is not None
    assert by_k2.webhook_url == "https://2.example"


def test_first_endpoint_subscriptions_are_stored_in_the_node_shape_without_an_endpoint_id(
    stack: Stack,
) -> None:
    store = stack.store()
    pid = store.create("Acme", "https://acme.example/h", ["order.created"]).partner.id
    store.subscribe(pid, ["order.created", "cart.*"])  # one existing row, one new
    rows = list(stack.db.subscriptions.find({}, {"_id": 0}))
    assert sorted(r["eventType"] for r in rows) == ["cart.*", "order.created"]  # no duplicate
    assert all("endpointId" not in r for r in rows), rows
    # a row an earlier version stored with endpointId: null is still found, and updated in place
    stack.db.subscriptions.insert_one(
        {"partnerId": ObjectId(pid), "endpointId": None, "eventType": "invoice.paid", "isActive": False}
    )
    store.subscribe(pid, ["invoice.paid"])
    assert stack.db.subscriptions.count_documents({"eventType": "invoice.paid"}) == 1
    assert store.subscriptions_of(pid) == ["cart.*", "invoice.paid", "order.created"]
