"""Partner operations through `webhooks local`: delivery log, replay, recover, test events,
the management API's credentials and the partner-scoped read API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from webhooks.delivery.signing import generate_secret

from runtime_process import RuntimeProcess
from support import Receiver, Reply, wait_until

pytestmark = pytest.mark.e2e
ADMIN_KEY = f"admin-{os.urandom(8).hex()}"
ADMIN = {"X-Admin-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {
        "good": Receiver(),
        "flaky": Receiver([Reply(500), Reply(503), Reply(200)]),
        "broken": Receiver([Reply(500)]),
        "other": Receiver(),
    }
    yield made
    for r in made.values():
        r.close()


@pytest.fixture(scope="module")
def partners(receivers: dict[str, Receiver]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "name": name,
            "webhookUrl": r.url,
            "apiKey": f"key-{name}-{os.urandom(4).hex()}",
            "secretKey": generate_secret(),
            "events": [f"{name}.*"],
            "isActive": True,
        }
        for name, r in receivers.items()
    }


@pytest.fixture(scope="module")
def runtime(partners: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    env = {
        "WEBHOOK_MAX_ATTEMPTS": "3",  # 3 quick attempts (the Node meaning), not a day's
        "WEBHOOK_RETRY_DELAY": "1000",
        "CACHE_TTL_SECONDS": "0",
        "ADMIN_API_KEY": ADMIN_KEY,
        # these tests try many wrong admin keys from one address on purpose
        "ADMIN_AUTH_MAX_FAILURES": "1000",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    rt = RuntimeProcess(list(partners.values()), env, tmp_path_factory.mktemp("ops"))
    yield rt
    rt.stop()


@pytest.fixture(scope="module")
def ids(runtime: RuntimeProcess) -> dict[str, str]:
    status, body = runtime.request("GET", "/api/v1/admin/partners", headers=ADMIN)
    assert status == 200
    return {p["name"]: p["partnerId"] for p in body["partners"]}


def post(
    runtime: RuntimeProcess, partners: dict[str, Any], event_type: str, data: dict[str, Any] | None = None
) -> str:
    status, body = runtime.post([{"eventType": event_type, "data": data or {}}], partners["good"]["apiKey"])
    assert status == 202, body
    return str(body["results"][0]["eventId"])


def attempts(runtime: RuntimeProcess, event_id: str, count: int) -> list[dict[str, Any]]:
    def logged() -> list[dict[str, Any]] | None:
        status, body = runtime.request("GET", f"/api/v1/admin/events/{event_id}/deliveries", headers=ADMIN)
        assert status == 200
        return body["deliveries"] if len(body["deliveries"]) >= count else None

    try:
        found: list[dict[str, Any]] = wait_until(logged, timeout=20, interval=0.3)
    except AssertionError:
        status, body = runtime.request("GET", f"/api/v1/admin/events/{event_id}/deliveries", headers=ADMIN)
        raise AssertionError(
            f"{count} attempts of {event_id} not logged: {body}\n" + "\n".join(runtime.lines[-30:])
        ) from None
    return found


def test_the_log_shows_each_attempt_of_a_flaky_delivery(
    runtime: RuntimeProcess, partners: dict[str, Any], ids: dict[str, str]
) -> None:
    event_id = post(runtime, partners, "flaky.created")
    log = attempts(runtime, event_id, 3)
    assert [(a["attempt"], a["statusCode"], a["outcome"]) for a in log] == [
        (1, 500, "retry"),
        (2, 503, "retry"),
        (3, 200, "delivered"),
    ]
    assert all(a["partnerId"] == ids["flaky"] and a["latencyMs"] >= 0 for a in log)
    status, page = runtime.request(
        "GET", f"/api/v1/admin/partners/{ids['flaky']}/deliveries?status=failed", headers=ADMIN
    )
    assert status == 200 and [a["statusCode"] for a in page["deliveries"]] == [503, 500]  # newest first


def test_cursor_pagination_walks_every_attempt_once(
    runtime: RuntimeProcess, partners: dict[str, Any], ids: dict[str, str], receivers: dict[str, Receiver]
) -> None:
    sent = [post(runtime, partners, "good.page", {"n": n}) for n in range(5)]
    # deliver writes the log after its batch, so the receiver having them is not enough:
    # wait for what the pages are read from
    for event_id in sent:
        attempts(runtime, event_id, 1)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        path = f"/api/v1/admin/partners/{ids['good']}/deliveries?limit=2" + (
            f"&cursor={cursor}" if cursor else ""
        )
        status, page = runtime.request("GET", path, headers=ADMIN)
        assert status == 200 and len(page["deliveries"]) <= 2
        seen += [a["id"] for a in page["deliveries"]]
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 5


def test_replay_delivers_again_with_the_same_event_id(
    runtime: RuntimeProcess, partners: dict[str, Any], ids: dict[str, str], receivers: dict[str, Receiver]
) -> None:
    good = receivers["good"]
    event_id = post(runtime, partners, "good.created", {"orderId": "r1"})
    wait_until(lambda: event_id in good.event_ids(), timeout=10)
    status, body = runtime.request(
        "POST", f"/api/v1/admin/partners/{ids['good']}/replay", {"eventId": event_id}, headers=ADMIN
    )
    assert status == 202 and body["enqueued"] == [event_id]
    wait_until(lambda: good.event_ids().count(event_id) == 2, timeout=10)
    replayed = [r for r in good.requests if r.headers["webhook-id"] == event_id]
    assert replayed[0].json() == replayed[1].json()  # the same event, same body
    Webhook(partners["good"]["secretKey"]).verify(replayed[1].body, replayed[1].headers)
    status, body = runtime.request(
        "POST",
        f"/api/v1/admin/partners/{ids['good']}/replay",
        {"eventId": "event_000000000000000000000000"},
        headers=ADMIN,
    )
    assert status == 404


def test_recover_resends_exactly_the_failed_deliveries(
    runtime: RuntimeProcess, partners: dict[str, Any], ids: dict[str, str], receivers: dict[str, Receiver]
) -> None:
    broken = receivers["broken"]
    since = datetime.now(UTC).isoformat()
    failed = [post(runtime, partners, "broken.created", {"n": n}) for n in range(2)]
    for event_id in failed:
        assert [a["outcome"] for a in attempts(runtime, event_id, 3)][-1] == "dead_lettered"
    broken.script = [Reply(200)]
    ok = post(runtime, partners, "broken.created", {"n": 99})
    wait_until(lambda: ok in broken.event_ids(), timeout=10)
    before = len(broken.requests)
    status, body = runtime.request(
        "POST", f"/api/v1/admin/partners/{ids['broken']}/recover", {"since": since}, headers=ADMIN
    )
    assert status == 202 and sorted(body["enqueued"]) == sorted(failed) and body["missing"] == []
    # the second recover below reads the log, which deliver writes after its batch: wait for
    # both deliveries there, not only at the receiver
    log = attempts(runtime, failed[0], 4)
    attempts(runtime, failed[1], 4)
    assert sorted(broken.event_ids()[before:]) == sorted(failed)  # exactly the failed ones, once each
    assert [(a["attempt"], a["outcome"]) for a in log] == [
        (1, "retry"),
        (2, "retry"),
        (3, "dead_lettered"),
        (1, "delivered"),
    ]
    status, body = runtime.request(
        "POST", f"/api/v1/admin/partners/{ids['broken']}/recover", {"since": since}, headers=ADMIN
    )
    assert status == 202 and body["enqueued"] == []  # delivered since: nothing left to recover


def test_a_test_event_arrives_signed(
    runtime: RuntimeProcess, partners: dict[str, Any], ids: dict[str, str], receivers: dict[str, Receiver]
) -> None:
    other = receivers["other"]
    status, body = runtime.request("POST", f"/api/v1/admin/partners/{ids['other']}/test", headers=ADMIN)
    assert status == 202
    [event_id] = body["enqueued"]
    wait_until(lambda: event_id in other.event_ids(), timeout=10)
    got = next(r for r in other.requests if r.headers["webhook-id"] == event_id)
    payload = Webhook(partners["other"]["secretKey"]).verify(got.body, got.headers)
    assert payload["eventType"] == "webhook.test" and got.headers["X-Recart-Event-Type"] == "webhook.test"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Admin-Key": ""},
        {"X-Admin-Key": "wrong"},
        {"X-Admin-Key": ADMIN_KEY + "x"},
        {"X-Admin-Key": ADMIN_KEY.upper()},
    ],
)
def test_admin_endpoints_refuse_missing_or_wrong_admin_keys(
    runtime: RuntimeProcess, ids: dict[str, str], headers: dict[str, str]
) -> None:
    for method, path in [
        ("GET", "/api/v1/admin/partners"),
        ("POST", f"/api/v1/admin/partners/{ids['good']}/test"),
        ("DELETE", f"/api/v1/admin/partners/{ids['good']}"),
        ("GET", f"/api/v1/admin/partners/{ids['good']}/deliveries"),
    ]:
        status, body = runtime.request(method, path, headers=headers)
        assert status == 401 and "error" in body, (method, path, headers)


def test_partner_keys_are_not_admin_keys(
    runtime: RuntimeProcess, partners: dict[str, Any], ids: dict[str, str]
) -> None:
    key = partners["good"]["apiKey"]
    for headers in ({"X-Admin-Key": key}, {"X-API-Key": key}):
        assert runtime.request("GET", "/api/v1/admin/partners", headers=headers)[0] == 401
    status, _ = runtime.request("GET", f"/api/v1/admin/partners/{ids['good']}", headers=ADMIN)
    assert status == 200


def test_a_partner_reads_only_its_own_deliveries(
    runtime: RuntimeProcess, partners: dict[str, Any], ids: dict[str, str], receivers: dict[str, Receiver]
) -> None:
    mine = post(runtime, partners, "good.mine")
    theirs = post(runtime, partners, "other.theirs")
    wait_until(
        lambda: mine in receivers["good"].event_ids() and theirs in receivers["other"].event_ids(), timeout=10
    )
    attempts(runtime, theirs, 1)
    attempts(runtime, mine, 1)  # the log is written after the batch: the receiver is not enough
    key = {"X-API-Key": partners["good"]["apiKey"]}
    status, body = runtime.request("GET", f"/api/v1/deliveries?partnerId={ids['other']}", headers=key)
    assert status == 400 and "partnerId" in body["error"]  # no such filter for partners
    for path in [
        "/api/v1/deliveries",
        f"/api/v1/deliveries?eventId={theirs}",
        f"/api/v1/deliveries?eventId={mine}",
    ]:
        status, body = runtime.request("GET", path, headers=key)
        assert status == 200
        assert {d["partnerId"] for d in body["deliveries"]} <= {ids["good"]}, path
        assert theirs not in {d["eventId"] for d in body["deliveries"]}
    status, body = runtime.request("GET", f"/api/v1/deliveries?eventId={mine}", headers=key)
    assert [d["eventId"] for d in body["deliveries"]] == [mine]
    # swapping keys shows the other partner its own log, never ours
    status, body = runtime.request(
        "GET", "/api/v1/deliveries", headers={"X-API-Key": partners["other"]["apiKey"]}
    )
    assert {d["partnerId"] for d in body["deliveries"]} == {ids["other"]}
    for headers in ({}, {"X-API-Key": "guess"}, {"X-API-Key": ids["good"]}):
        assert runtime.request("GET", "/api/v1/deliveries", headers=headers)[0] == 401
    assert runtime.request("GET", "/api/v1/deliveries?cursor=not-a-cursor", headers=key)[0] == 400


def test_partner_lifecycle_through_the_management_api(runtime: RuntimeProcess) -> None:
    late = Receiver()
    try:
        status, created = runtime.request(
            "POST",
            "/api/v1/admin/partners",
            {"name": "Late", "webhookUrl": late.url, "events": ["late.*"]},
            ADMIN,
        )
        assert status == 201 and created["apiKey"] and created["secretKey"].startswith("whsec_")
        pid = created["partnerId"]
        assert (
            runtime.request("POST", "/api/v1/admin/partners", {"name": "", "webhookUrl": "ftp://x"}, ADMIN)[0]
            == 400
        )
        status, body = runtime.request(
            "POST", f"/api/v1/admin/partners/{pid}/subscriptions", {"events": ["more.*"]}, ADMIN
        )
        assert body["events"] == ["late.*", "more.*"]
        status, body = runtime.request(
            "DELETE", f"/api/v1/admin/partners/{pid}/subscriptions", {"events": ["late.*"]}, ADMIN
        )
        assert body["events"] == ["more.*"]
        status, body = runtime.request("PATCH", f"/api/v1/admin/partners/{pid}", {"isActive": False}, ADMIN)
        assert status == 200 and body["isActive"] is False
        assert runtime.request("POST", f"/api/v1/admin/partners/{pid}/test", headers=ADMIN)[0] == 409
        status, body = runtime.request(
            "POST", f"/api/v1/admin/partners/{pid}/rotate-secret", {"overlapHours": 1}, ADMIN
        )
        assert status == 200 and body["secretKey"] != created["secretKey"]
        assert runtime.request("DELETE", f"/api/v1/admin/partners/{pid}", headers=ADMIN)[0] == 200
        assert runtime.request("GET", f"/api/v1/admin/partners/{pid}", headers=ADMIN)[0] == 404
        assert runtime.request("GET", "/api/v1/admin/partners/not-an-id", headers=ADMIN)[0] == 404
    finally:
        late.close()


def test_cli_equivalents(
    runtime: RuntimeProcess, partners: dict[str, Any], ids: dict[str, str], receivers: dict[str, Receiver]
) -> None:
    event_id = post(runtime, partners, "good.cli")
    attempts(runtime, event_id, 1)
    listed = runtime.cli("deliveries", "list", "--partner", ids["good"], "--event-id", event_id, "--json")
    assert [d["eventId"] for d in listed["deliveries"]] == [event_id]
    replayed = runtime.cli("replay", "--partner", ids["good"], "--event-id", event_id, "--json")
    assert replayed["enqueued"] == [event_id]
    tested = runtime.cli("test", "--partner", ids["good"], "--json")
    wait_until(
        lambda: (
            tested["enqueued"][0] in receivers["good"].event_ids()
            and receivers["good"].event_ids().count(event_id) == 2
        ),
        timeout=10,
    )
