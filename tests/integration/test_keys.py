"""Admin and partner keys: failed keys counted across workers, the right key never locked
out, API keys rotated (with or without an overlap), and no answer that carries a key or a
secret kept in a cache. The ingest handler over SecantusDB and moto's SQS server; each
``function("ingest")`` is a cold start of its own, as a second API worker would be."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks_cli.main import main

from conftest import Stack
from support import api_event

ADMIN_KEY = "keys-admin"
ATTACKER = "198.51.100.7"


@pytest.fixture
def workers(stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``workers(n)``: n ingest handlers loaded separately (n processes' worth of state),
    each a call(method, path, body=None, headers=None, source_ip=...) -> (status, body, headers)."""
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)

    def make(count: int) -> list[Any]:
        return [_caller(function("ingest")) for _ in range(count)]

    return make


def _caller(handler: Any) -> Any:
    def call(
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        source_ip: str = "203.0.113.10",
    ) -> tuple[int, Any, dict[str, str]]:
        event = api_event(
            json.dumps(body) if body is not None else None,
            method=method,
            path=path,
            headers={"X-Admin-Key": ADMIN_KEY, **(headers or {})},
        )
        event["requestContext"]["identity"]["sourceIp"] = source_ip
        result = handler(event)
        reply_headers = dict(result.get("headers") or {})
        reply_headers.update({k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()})
        text = result.get("body") or ""
        body = json.loads(text) if text.startswith(("{", "[")) else text
        return int(result["statusCode"]), body, reply_headers

    return call


def _admin_with(call: Any, key: str, source: str = ATTACKER) -> tuple[int, Any, dict[str, str]]:
    answer: tuple[int, Any, dict[str, str]] = call(
        "GET", "/api/v1/admin/partners", headers={"X-Admin-Key": key}, source_ip=source
    )
    return answer


def _publish(call: Any, key: str, source: str = ATTACKER) -> tuple[int, Any, dict[str, str]]:
    events = [{"eventType": "order.created", "data": {}}]
    answer: tuple[int, Any, dict[str, str]] = call(
        "POST", "/api/v1/events", events, headers={"X-API-Key": key}, source_ip=source
    )
    return answer


# --- admin key: one count across workers, the operator never locked out ---------------------


def test_failed_admin_keys_on_separate_workers_share_one_count(workers: Any) -> None:
    first, second, third = workers(3)
    statuses = [_admin_with(w, "wrong")[0] for _ in range(4) for w in (first, second, third)]
    # 12 failures over three workers: the 11th and 12th are past the one limit of 10
    assert statuses == [401] * 10 + [429] * 2
    status, body, headers = _admin_with(first, "wrong-again")
    assert status == 429 and int(headers["Retry-After"]) >= 1
    assert "wrong" not in json.dumps(body)


def test_the_right_admin_key_is_accepted_from_a_throttled_source(workers: Any, caplog: Any) -> None:
    [call] = workers(1)
    for _ in range(11):
        _admin_with(call, "wrong")
    assert _admin_with(call, "wrong")[0] == 429  # the source is throttled...
    assert _admin_with(call, ADMIN_KEY)[0] == 200  # ...and the operator behind it still gets in
    assert _admin_with(call, "wrong", source="198.51.100.8")[0] == 401  # other sources: their own count
    refused = [r for r in caplog.records if r.getMessage() == "admin key refused"]
    assert len(refused) == 13 and sum(r.throttled for r in refused) == 2


# --- partner keys: the same mechanism ---------------------------------------------------------


def test_failed_partner_keys_are_throttled_per_source_and_the_right_key_still_publishes(
    stack: Stack, workers: Any
) -> None:
    key = stack.store().create("producer", "https://p.example/h", ["order.*"]).api_key
    first, second = workers(2)
    statuses = [_publish(w, f"wrong-{n}")[0] for n in range(6) for w in (first, second)]
    assert statuses == [401] * 10 + [429] * 2
    status, body, headers = _publish(first, "wrong")
    assert status == 429 and int(headers["Retry-After"]) >= 1 and "error" in body
    assert _publish(second, key)[0] == 202  # the producer sharing that address is not locked out
    assert _publish(first, "wrong", source="198.51.100.9")[0] == 401
    # the partner-scoped delivery log counts on the same per-source budget
    status, _, _ = first("GET", "/api/v1/deliveries", headers={"X-API-Key": "wrong"}, source_ip=ATTACKER)
    assert status == 429


# --- rotate-api-key ---------------------------------------------------------------------------


def test_rotating_an_api_key_without_overlap_refuses_the_old_key_at_once(stack: Stack, workers: Any) -> None:
    created = stack.store().create("producer", "https://p.example/h", ["order.*"])
    stack.db["partners"].update_one({"apiKeyHash": {"$exists": True}}, {"$set": {"apiKeyLegacy": True}})
    [call] = workers(1)
    assert _publish(call, created.api_key)[0] == 202
    status, body, headers = call("POST", f"/api/v1/admin/partners/{created.partner.id}/rotate-api-key")
    assert status == 200 and set(body) == {"partnerId", "apiKey", "previousKeyValidHours"}, body
    assert body["partnerId"] == created.partner.id and body["previousKeyValidHours"] == 0
    assert headers["Cache-Control"] == "no-store"
    assert _publish(call, created.api_key)[0] == 401
    assert _publish(call, body["apiKey"])[0] == 202
    stored = stack.db["partners"].find_one({})
    assert "apiKeyLegacy" not in stored and body["apiKey"] not in json.dumps(stored, default=str)
    assert call("GET", f"/api/v1/admin/partners/{created.partner.id}")[1].get("apiKeyLegacy") in (None, False)


def test_an_api_key_rotated_with_an_overlap_works_until_the_overlap_ends(stack: Stack, workers: Any) -> None:
    created = stack.store().create("producer", "https://p.example/h", ["order.*"])
    [call] = workers(1)
    path = f"/api/v1/admin/partners/{created.partner.id}/rotate-api-key"
    status, first, _ = call("POST", path, {"overlapHours": 2})
    assert status == 200 and first["previousKeyValidHours"] == 2
    assert _publish(call, created.api_key)[0] == 202  # the old key, within the overlap
    assert _publish(call, first["apiKey"])[0] == 202
    [kept] = stack.db["partners"].find_one({})["previousApiKeys"]
    assert set(kept) == {"apiKeyHash", "expiresAt"} and created.api_key not in json.dumps(kept, default=str)
    # the overlap ends (its expiry moved to the past, as time would)
    past = datetime.now(UTC) - timedelta(seconds=1)
    stack.db["partners"].update_one({}, {"$set": {"previousApiKeys.0.expiresAt": past}})
    assert _publish(call, created.api_key)[0] == 401
    assert _publish(call, first["apiKey"])[0] == 202
    # an emergency rotation (no overlap) retires every earlier key at once
    call("POST", path, {"overlapHours": 1})
    status, second, _ = call("POST", path, {})
    assert status == 200
    assert [_publish(call, k)[0] for k in (first["apiKey"], second["apiKey"])] == [401, 202]
    assert stack.db["partners"].find_one({})["previousApiKeys"] == []


@pytest.mark.parametrize("body", [{"overlapHours": -1}, {"overlapHours": 721}, {"overlap": 1}])
def test_a_bad_rotate_api_key_body_is_a_400_and_the_key_is_kept(
    stack: Stack, workers: Any, body: dict[str, Any]
) -> None:
    created = stack.store().create("producer", "https://p.example/h", ["order.*"])
    [call] = workers(1)
    status, _, _ = call("POST", f"/api/v1/admin/partners/{created.partner.id}/rotate-api-key", body)
    assert status == 400
    assert _publish(call, created.api_key)[0] == 202


def test_rotate_api_key_of_an_unknown_partner_is_a_404(workers: Any) -> None:
    [call] = workers(1)
    assert call("POST", "/api/v1/admin/partners/0123456789abcdef01234567/rotate-api-key")[0] == 404


def test_the_cli_rotates_an_api_key_and_prints_it_once_as_json(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    created = stack.store().create("producer", "https://p.example/h", ["order.*"])
    code = main(["partners", "rotate-api-key", created.partner.id, "--overlap-hours", "1.5"])
    out, err = capsys.readouterr()
    rotated = json.loads(out)
    assert code == 0 and "shown once" in err
    assert rotated["partnerId"] == created.partner.id and rotated["previousKeyValidHours"] == 1.5
    store = stack.store()
    assert store.find_by_api_key(rotated["apiKey"]) is not None
    assert store.find_by_api_key(created.api_key) is not None  # within its overlap
    assert main(["partners", "rotate-api-key", created.partner.id]) == 0
    capsys.readouterr()
    assert store.find_by_api_key(created.api_key) is None
    assert store.find_by_api_key(rotated["apiKey"]) is None


# --- Cache-Control: no-store -----------------------------------------------------------------


def test_every_answer_that_carries_a_key_or_a_secret_says_no_store(stack: Stack, workers: Any) -> None:
    [call] = workers(1)
    status, created, headers = call(
        "POST", "/api/v1/admin/partners", {"name": "n", "webhookUrl": "https://n.example/h", "events": []}
    )
    assert status == 201 and {"apiKey", "secretKey"} <= set(created)
    answers = {"create": headers}
    pid = created["partnerId"]
    for route in ("rotate-secret", "rotate-api-key"):
        status, body, answers[route] = call("POST", f"/api/v1/admin/partners/{pid}/{route}")
        assert status == 200 and ({"secretKey", "apiKey"} & set(body)), body
    # and every other JSON answer: reads, errors, an unknown route
    for path in (f"/api/v1/admin/partners/{pid}", "/api/v1/admin/partners/nope", "/api/v1/nothing-here"):
        answers[path] = call("GET", path)[2]
    answers["401"] = _admin_with(call, "wrong")[2]
    assert {name: h.get("Cache-Control") for name, h in answers.items()} == dict.fromkeys(answers, "no-store")


def test_the_console_keeps_its_own_cache_policy(workers: Any) -> None:
    [call] = workers(1)
    status, _, headers = call("GET", "/console")
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    assert headers["Content-Type"].startswith("text/html")
