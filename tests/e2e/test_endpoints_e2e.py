"""End to end: a partner's endpoints through `webhooks local` (real HTTP in, real receivers
out): each endpoint gets what its event types and filter select, signed with its own secret;
a failing endpoint never delays or duplicates another; its dead letter is announced to the
partner; a portal token manages the partner's endpoints and nothing else."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from runtime_process import RuntimeProcess
from support import Receiver, Reply, partner_spec

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {
        "first": Receiver(),
        "big-orders": Receiver(),
        "failing": Receiver([Reply(500)]),
        "alerts": Receiver(),
        "other": Receiver(),
    }
    yield made
    for receiver in made.values():
        receiver.close()


@pytest.fixture(scope="module")
def partners(receivers: dict[str, Receiver]) -> dict[str, dict[str, Any]]:
    return {
        "shop": partner_spec("shop", receivers["first"].url, ["order.*"]),
        "other": partner_spec("other", receivers["other"].url, ["order.*"]),
    }


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, partners: dict[str, Any]) -> Iterator[RuntimeProcess]:
    env = {"CACHE_TTL_SECONDS": "0", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    rt = RuntimeProcess(list(partners.values()), env, tmp_path_factory.mktemp("endpoints"))
    yield rt
    rt.stop()


def admin(runtime: RuntimeProcess) -> dict[str, str]:
    return {"X-Admin-Key": (runtime.data_dir / "admin-key").read_text().strip()}


def partner_id(runtime: RuntimeProcess, name: str) -> str:
    status, listed = runtime.request("GET", "/api/v1/admin/partners", headers=admin(runtime))
    assert status == 200
    return str(next(p["partnerId"] for p in listed["partners"] if p["name"] == name))


def add_endpoint(runtime: RuntimeProcess, partner: str, body: dict[str, Any]) -> dict[str, Any]:
    status, created = runtime.request(
        "POST", f"/api/v1/admin/partners/{partner}/endpoints", body, headers=admin(runtime)
    )
    assert status == 201, created
    return dict(created)


def signed_by(got: Any, secret: str) -> bool:
    Webhook(secret).verify(got.body, got.headers)
    expected = hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(got.headers["X-Recart-Signature-256"], expected)


def test_each_endpoint_gets_what_its_types_and_filter_select_signed_with_its_own_secret(
    runtime: RuntimeProcess, partners: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    shop = partner_id(runtime, "shop")
    big = add_endpoint(
        runtime,
        shop,
        {
            "url": receivers["big-orders"].url,
            "events": ["order.created"],
            "filter": {"data": {"total": {"$gte": 100}}},
            "headers": {"X-Team": "billing"},
            "description": "big orders",
        },
    )
    status, listed = runtime.request(
        "GET", f"/api/v1/admin/partners/{shop}/endpoints", headers=admin(runtime)
    )
    assert status == 200
    assert [e["endpointId"] for e in listed["endpoints"]] == [f"ep_{shop}", big["endpointId"]]
    assert all("secretKey" not in e for e in listed["endpoints"])

    events = [
        {"eventType": "order.created", "data": {"orderId": "1", "total": 150}},
        {"eventType": "order.created", "data": {"orderId": "2", "total": 50}},
        {"eventType": "order.updated", "data": {"orderId": "1", "status": "paid"}},
    ]
    status, body = runtime.post(events, partners["shop"]["apiKey"])
    assert status == 202, body
    ids = [r["eventId"] for r in body["results"]]
    first = receivers["first"].wait_for(3)
    [only] = receivers["big-orders"].wait_for(1)
    time.sleep(0.5)  # anything extra would have arrived by now
    assert sorted(receivers["first"].event_ids()) == sorted(ids)
    assert receivers["big-orders"].event_ids() == [ids[0]]
    assert only.headers["X-Team"] == "billing"
    assert signed_by(only, big["secretKey"])
    assert all(signed_by(got, partners["shop"]["secretKey"]) for got in first)
    with pytest.raises(WebhookVerificationError):  # not the partner's secret
        Webhook(partners["shop"]["secretKey"]).verify(only.body, only.headers)


def test_a_failing_endpoint_is_retried_on_its_schedule_and_announced_without_touching_the_others(
    runtime: RuntimeProcess, partners: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    shop = partner_id(runtime, "shop")
    failing = add_endpoint(
        runtime, shop, {"url": receivers["failing"].url, "events": ["order.paid"], "retrySchedule": [1, 1]}
    )
    add_endpoint(runtime, shop, {"url": receivers["alerts"].url, "events": ["message.attempt.exhausted"]})
    add_endpoint(
        runtime,
        partner_id(runtime, "other"),
        {"url": receivers["other"].url, "events": ["message.attempt.*"]},
    )
    before = len(receivers["first"].requests)

    status, body = runtime.post(
        [{"eventType": "order.paid", "data": {"orderId": "9"}}], partners["shop"]["apiKey"]
    )
    assert status == 202
    event_id = body["results"][0]["eventId"]
    receivers["first"].wait_for(before + 1)
    attempts = receivers["failing"].wait_for(3, timeout=20)
    [alert] = receivers["alerts"].wait_for(1, timeout=20)
    time.sleep(1.0)
    assert len(receivers["failing"].requests) == 3  # the schedule's two waits: three attempts
    assert {a.headers["webhook-id"] for a in attempts} == {event_id}
    assert receivers["first"].event_ids()[before:] == [event_id]  # once, while the other failed
    announced = alert.json()
    assert announced["eventType"] == "message.attempt.exhausted"
    assert announced["data"]["eventId"] == event_id
    assert announced["data"]["endpointId"] == failing["endpointId"]
    assert announced["data"]["attempts"] == 3 and announced["data"]["lastStatus"] == 500
    # another partner's subscription to the same operational type never sees it
    assert all(r.json()["eventType"] != "message.attempt.exhausted" for r in receivers["other"].requests)


def test_a_portal_token_manages_its_partners_endpoints_and_nothing_else(
    runtime: RuntimeProcess, receivers: dict[str, Receiver]
) -> None:
    shop, other = partner_id(runtime, "shop"), partner_id(runtime, "other")
    status, issued = runtime.request(
        "POST", f"/api/v1/admin/partners/{shop}/portal-tokens", {"ttlSeconds": 600}, headers=admin(runtime)
    )
    assert status == 201, issued
    assert issued["url"].endswith("#portal=" + issued["token"]) and "/console" in issued["url"]
    bearer = {"Authorization": f"Bearer {issued['token']}"}

    status, mine = runtime.request("GET", "/api/v1/endpoints", headers=bearer)
    assert status == 200 and mine["endpoints"][0]["endpointId"] == f"ep_{shop}"
    status, created = runtime.request(
        "POST",
        "/api/v1/endpoints",
        {"url": receivers["big-orders"].url, "events": ["order.refunded"]},
        headers=bearer,
    )
    assert status == 201 and created["partnerId"] == shop and created["secretKey"]
    status, bad = runtime.request(
        "PATCH",
        f"/api/v1/endpoints/{created['endpointId']}",
        {"filter": {"data": {"total": {"$gte": "x", "$oops": 1}}}},
        headers=bearer,
    )
    assert status == 400 and "filter" in bad["error"]
    status, _ = runtime.request("GET", f"/api/v1/endpoints/ep_{other}", headers=bearer)
    assert status == 404
    status, _ = runtime.request("GET", "/api/v1/admin/partners", headers=bearer)
    assert status in (401, 403)
    status, _ = runtime.request("DELETE", f"/api/v1/endpoints/{created['endpointId']}", headers=bearer)
    assert status == 200
    status, revoked = runtime.request(
        "DELETE", f"/api/v1/admin/partners/{shop}/portal-tokens", headers=admin(runtime)
    )
    assert status == 200 and revoked["revoked"] >= 1
    status, _ = runtime.request("GET", "/api/v1/endpoints", headers=bearer)
    assert status == 401
