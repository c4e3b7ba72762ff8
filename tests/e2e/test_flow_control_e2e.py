"""Flow control through `webhooks local`: a rate limit held by two runtimes sharing the
queues and the database, and an endpoint disabled, parked and replayed on re-enable."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from runtime_process import RuntimeProcess
from support import CountingReceiver, partner_spec, wait_until

pytestmark = pytest.mark.e2e
ADMIN_KEY = f"admin-{os.urandom(8).hex()}"
ADMIN = {"X-Admin-Key": ADMIN_KEY}
LIMIT = 20
EVENTS = 160


@pytest.fixture
def receivers() -> Iterator[dict[str, CountingReceiver]]:
    made = {"limited": CountingReceiver(), "failing": CountingReceiver(status=500), "ops": CountingReceiver()}
    yield made
    for receiver in made.values():
        receiver.close()


def start_pair(partners: list[dict[str, Any]], env: dict[str, str]) -> tuple[RuntimeProcess, RuntimeProcess]:
    first = RuntimeProcess(partners, env={**env, "ADMIN_API_KEY": ADMIN_KEY})
    try:
        second = RuntimeProcess(env={**env, **first.endpoints, "ADMIN_API_KEY": ADMIN_KEY})
    except Exception:
        first.stop()
        raise
    return first, second


def partner_id(runtime: RuntimeProcess, name: str) -> str:
    status, body = runtime.request("GET", "/api/v1/admin/partners", headers=ADMIN)
    assert status == 200
    [found] = [p for p in body["partners"] if p["name"] == name]
    return str(found["partnerId"])


@pytest.mark.skipif(
    os.environ.get("WEBHOOKS_TEST_TARGET") == "localstack",
    reason="measures that deliveries reach the partner's rate limit within 10% each second; "
    "LocalStack's SQS here (~350 calls/s) carries the deferrals too slowly for that figure to be "
    "about us (the limit itself is checked against LocalStack in tests/integration/test_flow_control.py)",
)
def test_two_runtimes_hold_a_partners_rate_limit_and_deliver_everything_once(
    receivers: dict[str, CountingReceiver],
) -> None:
    spec = partner_spec("limited", receivers["limited"].url, ["limited.*"])
    env = {"CACHE_TTL_SECONDS": "0", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    first, second = start_pair([spec], env)
    try:
        pid = partner_id(first, "limited")
        status, body = first.request("PATCH", f"/api/v1/admin/partners/{pid}", {"rateLimit": LIMIT}, ADMIN)
        assert status == 200 and body["rateLimit"] == LIMIT
        for n in range(EVENTS // 10):
            runtime = first if n % 2 else second
            batch = [{"eventType": "limited.tick", "data": {"n": n * 10 + i}} for i in range(10)]
            status, _ = runtime.post(batch, spec["apiKey"])
            assert status == 202
        wait_until(lambda: len(receivers["limited"].arrivals) >= EVENTS, timeout=60, interval=0.2)
        time.sleep(1.5)  # anything extra would have arrived by now
    finally:
        first.stop()
        second.stop()

    arrivals = receivers["limited"].arrivals
    ids = [event_id for event_id, _, _ in arrivals]
    assert len(ids) == EVENTS and len(set(ids)) == EVENTS  # all of them, each once
    per_second = Counter(int(at) for _, at, _ in arrivals)
    counts = [per_second.get(s, 0) for s in range(min(per_second), max(per_second) + 1)]
    # every second at the receiver, not only on average (POST latency could push a request
    # into the next second: the 10% allows for it)
    assert max(counts) <= LIMIT * 1.1, counts
    middle = counts[1:-1]  # the first and last seconds are partial
    assert len(middle) >= 5
    assert LIMIT * 0.9 <= sum(middle) / len(middle) <= LIMIT * 1.1, counts


def test_a_failing_endpoint_is_disabled_announced_parked_and_replayed_on_enable(
    receivers: dict[str, CountingReceiver],
) -> None:
    # the failing partner asks for its own operational events; ops for every `endpoint.*`,
    # which brings it only its own (a partner's endpoint.disabled is for that partner alone)
    failing = partner_spec("failing", receivers["failing"].url, ["failing.*", "endpoint.*"])
    ops = partner_spec("ops", receivers["ops"].url, ["endpoint.*"])
    env = {
        "CACHE_TTL_SECONDS": "0",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "WEBHOOK_RETRY_DELAY": "1000",
        "WEBHOOK_MAX_ATTEMPTS": "10",
        "ENDPOINT_DISABLE_AFTER_FAILURES": "3",
        "ENDPOINT_DISABLE_AFTER_SECONDS": "1",
    }
    runtime = RuntimeProcess([failing, ops], env={**env, "ADMIN_API_KEY": ADMIN_KEY})
    try:
        pid = partner_id(runtime, "failing")
        sent = []
        for n in range(2):
            status, body = runtime.post([{"eventType": "failing.order", "data": {"n": n}}], failing["apiKey"])
            assert status == 202
            sent.append(body["results"][0]["eventId"])

        # announced in the log; its event goes to the failing partner, parked with the rest
        wait_until(
            lambda: any("endpoint.disabled" in line and pid in line for line in runtime.lines), timeout=30
        )
        attempts_when_disabled = len(receivers["failing"].arrivals)
        assert attempts_when_disabled >= 3

        for n in range(2, 4):
            status, body = runtime.post([{"eventType": "failing.order", "data": {"n": n}}], failing["apiKey"])
            sent.append(body["results"][0]["eventId"])

        def parked() -> bool:
            status, view = runtime.request("GET", f"/api/v1/admin/partners/{pid}", headers=ADMIN)
            # the four, and its endpoint.failing (a streak of 2, half of 3) and endpoint.disabled
            return bool(
                view["endpoint"]["status"] == "disabled" and view["endpoint"]["parkedDeliveries"] == 6
            )

        wait_until(parked, timeout=30, interval=0.2)
        assert len(receivers["failing"].arrivals) == attempts_when_disabled  # parked, not attempted

        receivers["failing"].status = 200  # the partner fixed its endpoint
        status, body = runtime.request("POST", f"/api/v1/admin/partners/{pid}/endpoint/enable", headers=ADMIN)
        assert status == 200 and body["replayed"] == 6 and body["remainingParked"] == 0
        # the six parked, and the endpoint.enabled the enable publishes
        wait_until(lambda: len(set(receivers["failing"].delivered())) == 7, timeout=30, interval=0.1)
        time.sleep(1)
        delivered = receivers["failing"].delivered()
        assert len(delivered) == 7 and set(sent) < set(delivered)  # each once, and its announcements
        assert receivers["ops"].delivered() == []  # another partner's endpoint.disabled
    finally:
        assert runtime.stop() == 0
