"""The admin API when things go wrong: wrong keys throttled, a half-made partner undone, a database outage a 503,
and an operator's bad body not counted as a rejected event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhooks.observability import metrics

from conftest import Stack
from support import ADMIN_KEY, api_event


def test_failed_admin_keys_are_throttled_per_source_and_logged_with_it(api: Any, caplog: Any) -> None:
    for _ in range(10):
        assert (
            api("GET", "/api/v1/admin/partners", headers={"X-Admin-Key": "wrong"}, source_ip="198.51.100.7")[
                0
            ]
            == 401
        )
    wrong = {"X-Admin-Key": "wrong"}
    status, body, headers = api("GET", "/api/v1/admin/partners", headers=wrong, source_ip="198.51.100.7")
    assert status == 429 and int(headers["Retry-After"]) > 0
    # the right key is still accepted from there: a throttle nobody can turn against the operator
    assert api("GET", "/api/v1/admin/partners", source_ip="198.51.100.7")[0] == 200
    assert api("GET", "/api/v1/admin/partners", headers=wrong, source_ip="198.51.100.8")[0] == 401
    refusals = [r for r in caplog.records if r.getMessage() == "admin key refused"]
    assert len(refusals) == 12 and {r.source_ip for r in refusals} == {"198.51.100.7", "198.51.100.8"}


def test_a_failed_partner_create_leaves_no_partner_nobody_has_the_key_of(
    stack: Stack, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymongo.errors import AutoReconnect

    from webhooks.partners.store import PartnerStore

    def away(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise AutoReconnect("connection lost")

    monkeypatch.setattr(PartnerStore, "update", away)  # the write after the insert fails
    body = {"name": "half", "webhookUrl": "https://h.example/h", "events": ["order.*"], "rateLimit": 5}
    status, reply, _ = api("POST", "/api/v1/admin/partners", body)
    assert status == 503 and "apiKey" not in reply
    assert stack.db["partners"].count_documents({"name": "half"}) == 0
    assert stack.db["subscriptions"].count_documents({}) == 0


def test_invalid_admin_bodies_are_not_counted_as_rejected_events(
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


def test_a_database_outage_is_a_503_on_every_route(
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
