"""End to end: `webhooks local` as a subprocess, real HTTP in, real receivers out."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from webhooks.delivery.signing import generate_secret
from webhooks_cli.servers import pid_alive

from runtime_process import RuntimeProcess
from support import Receiver, Reply, partner_spec, sigterm_burst, wait_until

pytestmark = pytest.mark.e2e


def listening_ports(pid: int) -> set[int]:
    """The TCP ports ``pid`` listens on: its socket descriptors found among /proc's listeners."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    ports = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def thread_nice_values(pid: int) -> list[int]:
    return [
        int((task / "stat").read_text().rsplit(")", 1)[1].split()[16])
        for task in Path(f"/proc/{pid}/task").iterdir()
    ]


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started that are still its children."""
    listed = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in listed.stdout.split()]


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {
        "orders": Receiver(),
        "customers": Receiver(),
        "inactive": Receiver(),
        "flaky": Receiver([Reply(500), Reply(503), Reply(200)]),
        "broken": Receiver([Reply(500)]),
    }
    yield made
    for receiver in made.values():
        receiver.close()


@pytest.fixture(scope="module")
def partners(receivers: dict[str, Receiver]) -> dict[str, dict[str, Any]]:
    spec = {
        "orders": ["order.*"],
        "customers": ["customer.created"],
        "inactive": ["order.*", "customer.created"],
        "flaky": ["flaky.event"],
        "broken": ["broken.event"],
    }
    return {
        name: {
            "name": name,
            "webhookUrl": receivers[name].url,
            "apiKey": f"key-{name}-{os.urandom(4).hex()}",
            "secretKey": generate_secret(),
            "events": events,
            "isActive": name != "inactive",
        }
        for name, events in spec.items()
    }


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory, partners: dict[str, Any]) -> Iterator[RuntimeProcess]:
    # 3 quick attempts (the Node meaning), not the standard schedule's day
    env = {
        "WEBHOOK_MAX_ATTEMPTS": "3",
        "WEBHOOK_RETRY_DELAY": "1000",
        "CACHE_TTL_SECONDS": "0",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    rt = RuntimeProcess(list(partners.values()), env, tmp_path_factory.mktemp("local"))
    yield rt
    rt.stop()


def test_signed_webhooks_reach_exactly_the_subscribers(
    runtime: RuntimeProcess, partners: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    events = [
        {"eventType": "order.created", "data": {"orderId": "1", "total": 10}},
        {"eventType": "order.updated", "data": {"orderId": "1", "status": "paid"}},
        {"eventType": "customer.created", "data": {"customerId": "c1", "name": "Zoë"}},
    ]
    status, body = runtime.post(events, partners["orders"]["apiKey"])
    assert status == 202, body
    ids = [r["eventId"] for r in body["results"]]
    orders = receivers["orders"].wait_for(2)
    customers = receivers["customers"].wait_for(1)
    time.sleep(0.5)  # anything extra would have arrived by now
    assert sorted(receivers["orders"].event_ids()) == sorted(ids[:2])
    assert receivers["customers"].event_ids() == [ids[2]]
    assert receivers["inactive"].requests == []
    for got, partner in [(orders[0], "orders"), (orders[1], "orders"), (customers[0], "customers")]:
        secret = partners[partner]["secretKey"]
        Webhook(secret).verify(got.body, got.headers)
        expected = hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(got.headers["X-Recart-Signature-256"], expected)
        assert list(got.json()) == ["eventId", "eventType", "timestamp", "data"]


def test_data_reaches_partners_as_the_node_services_json_stringify_wrote_it(
    runtime: RuntimeProcess, partners: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    # written by hand: Python's json would not produce these spellings
    raw = (
        b'[{"eventType": "order.paid", "data": {"total": 100.0, "count": 1e2, "fee": 1.50,'
        b' "tiny": 1E-7, "zero": -0.0, "bySize": {"xl": 1, "10": 2, "2": 3}}}]'
    )
    before = len(receivers["orders"].requests)
    status, body = runtime.post([], partners["orders"]["apiKey"], raw=raw)
    assert status == 202, body
    [got] = receivers["orders"].wait_for(before + 1)[before:]
    # and the keys as JSON.parse orders them: array indices first
    assert got.body.endswith(
        b'"data":{"total":100,"count":100,"fee":1.5,"tiny":1e-7,"zero":0,"bySize":{"2":3,"10":2,"xl":1}}}'
    )
    secret = partners["orders"]["secretKey"]
    Webhook(secret).verify(got.body, got.headers)
    expected = hmac.new(secret.encode(), got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers["X-Recart-Signature-256"], expected)


def test_retries_follow_the_backoff_schedule(
    runtime: RuntimeProcess, partners: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    status, body = runtime.post([{"eventType": "flaky.event", "data": {}}], partners["flaky"]["apiKey"])
    assert status == 202
    attempts = receivers["flaky"].wait_for(3, timeout=15)
    gaps = [attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at]
    assert 0.9 <= gaps[0] <= 2.6, gaps  # 1 s visibility (+ up to one 1 s long-poll turn)
    assert 1.9 <= gaps[1] <= 3.6, gaps  # 2 s
    assert {a.headers["webhook-id"] for a in attempts} == {body["results"][0]["eventId"]}
    time.sleep(1.5)
    assert len(receivers["flaky"].requests) == 3  # delivered on the third: no more attempts


def test_dead_letters_are_listed_and_redriven(
    runtime: RuntimeProcess, partners: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    status, body = runtime.post(
        [{"eventType": "broken.event", "data": {"x": 1}}], partners["broken"]["apiKey"]
    )
    event_id = body["results"][0]["eventId"]
    receivers["broken"].wait_for(3, timeout=15)

    def listed() -> list[dict[str, Any]]:
        return [d for d in runtime.cli("dlq", "list", "--json") if d["eventId"] == event_id]

    [dead] = wait_until(listed, timeout=10, interval=0.3)
    assert dead["attempts"] == 3 and dead["lastStatus"] == 500 and dead["lastError"] == "HTTP 500"
    assert dead["eventType"] == "broken.event" and dead["partnerId"]
    assert listed() == [dead]  # listing does not consume

    receivers["broken"].script = [Reply(200)]
    before = len(receivers["broken"].requests)
    moved = runtime.cli("dlq", "redrive", "--event-id", event_id, "--json")
    assert [m["eventId"] for m in moved] == [event_id]
    receivers["broken"].wait_for(before + 1, timeout=10)
    assert receivers["broken"].requests[-1].headers["webhook-id"] == event_id  # same id on redrive
    assert listed() == []


def test_the_banner_says_how_to_sign_in_to_the_console(runtime: RuntimeProcess) -> None:
    key = (runtime.data_dir / "admin-key").read_text().strip()
    banner = runtime.lines[: runtime.lines.index(f"API listening on {runtime.url}")]
    console = banner.index(f"Console: {runtime.url}/console")
    assert f"admin key {key} " in banner[console + 1]


def test_a_request_built_from_the_served_documents_servers_reaches_the_api(runtime: RuntimeProcess) -> None:
    status, doc = runtime.request("GET", "/api/v1/openapi.json")
    assert status == 200 and doc["paths"]["/api/v1/admin/partners"]["get"]
    [server] = doc["servers"]  # what Swagger UI's "Try it out" prefixes every path with
    key = (runtime.data_dir / "admin-key").read_text().strip()
    status, listed = runtime.request(
        "GET", server["url"].rstrip("/") + "/api/v1/admin/partners", headers={"X-Admin-Key": key}
    )
    assert status == 200 and {"orders", "broken"} <= {p["name"] for p in listed["partners"]}


def test_a_dead_letter_delivered_since_is_neither_listed_nor_redriven(
    runtime: RuntimeProcess, partners: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    broken = receivers["broken"]
    broken.script = [Reply(500)]
    status, body = runtime.post(
        [{"eventType": "broken.event", "data": {"n": n}} for n in (1, 2)], partners["broken"]["apiKey"]
    )
    assert status == 202
    replayed, left = (r["eventId"] for r in body["results"])

    def dead() -> dict[str, dict[str, Any]]:
        listed = {d["eventId"]: d for d in runtime.cli("dlq", "list", "--json")}
        return listed if {replayed, left} <= set(listed) else {}

    partner_id = wait_until(dead, timeout=20, interval=0.3)[replayed]["partnerId"]
    broken.script = [Reply(200)]
    runtime.cli("replay", "--partner", partner_id, "--event-id", replayed, "--json")

    def delivered() -> bool:
        log = runtime.cli("deliveries", "list", "--partner", partner_id, "--event-id", replayed, "--json")
        return any(d["outcome"] == "delivered" for d in log["deliveries"])

    wait_until(delivered, timeout=15, interval=0.3)
    assert replayed not in {d["eventId"] for d in runtime.cli("dlq", "list", "--json")}
    moved = runtime.cli("dlq", "redrive", "--all", "--json")
    assert [m["eventId"] for m in moved] == [left]
    wait_until(lambda: [r.event_id for r in broken.requests].count(left) == 4, timeout=15)
    assert [r.event_id for r in broken.requests].count(replayed) == 4  # 3 failed + the replay


def api_workers(runtime: RuntimeProcess) -> list[int]:
    return [pid for pid in child_pids(runtime.process.pid) if b"webhooks_cli.api_worker" in cmdline(pid)]


def cmdline(pid: int) -> bytes:
    """A process's command line; empty once it is gone (a killed worker the runtime reaps
    between pgrep's listing and this read)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def test_worker_processes_serve_the_api_and_deliveries_run_below_it(
    runtime: RuntimeProcess, partners: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    workers = api_workers(runtime)
    assert len(workers) == 3  # --api-workers 3, the default
    assert all(runtime.port in listening_ports(pid) for pid in workers)
    # the runtime holds the port without listening: no request waits behind its pollers
    assert runtime.port not in listening_ports(runtime.process.pid)
    before = len(receivers["orders"].requests)
    status, _ = runtime.post([{"eventType": "order.created", "data": {"n": 1}}], partners["orders"]["apiKey"])
    assert status == 202
    receivers["orders"].wait_for(before + 1)
    # the 2 dispatch and 4 deliver pollers and the threads they started, at nice 19; the rest at 0
    nice = thread_nice_values(runtime.process.pid)
    assert nice.count(19) >= 6 and 0 in nice and set(nice) == {0, 19}


def test_an_api_worker_that_dies_is_replaced(runtime: RuntimeProcess, partners: dict[str, Any]) -> None:
    before = api_workers(runtime)
    os.kill(before[0], signal.SIGKILL)

    def replaced() -> bool:
        now = api_workers(runtime)
        return len(now) == 3 and before[0] not in now and all(runtime.port in listening_ports(p) for p in now)

    wait_until(replaced, timeout=30)
    # the runtime's output is read by a thread of its own: wait for the line, not only the worker
    wait_until(lambda: any("exited (code -9); starting another" in line for line in runtime.lines))
    for n in range(6):  # every connection lands on a live worker
        status, _ = runtime.post(
            [{"eventType": "order.created", "data": {"n": n}}], partners["orders"]["apiKey"]
        )
        assert status == 202


def test_the_cli_finds_the_running_runtime(runtime: RuntimeProcess, receivers: dict[str, Receiver]) -> None:
    late = Receiver()
    try:
        created = runtime.cli("partners", "create", "--name", "Late", "--url", late.url, "--events", "late.*")
        assert created["apiKey"] and created["secretKey"].startswith("whsec_")
        status, body = runtime.post([{"eventType": "late.arrival", "data": {}}], created["apiKey"])
        assert status == 202
        [got] = late.wait_for(1)
        Webhook(created["secretKey"]).verify(got.body, got.headers)
        listed = runtime.cli("partners", "list", "--json")
        assert "Late" in [p["name"] for p in listed]
        assert all("apiKey" not in p and "secretKey" not in p for p in listed)
    finally:
        late.close()


def test_clean_shutdown_and_data_survives_a_restart(
    runtime: RuntimeProcess, partners: dict[str, Any]
) -> None:
    # a throwaway runtime of its own, so the module's runtime is left alone
    data_dir = runtime.data_dir.parent / "restart"
    first = RuntimeProcess([partners["orders"]], {"POWERTOOLS_LOG_LEVEL": "WARNING"}, data_dir)
    mongo_uri = first.state["env"]["MONGO_URI"]
    children = child_pids(first.process.pid)
    # SecantusDB, three API worker processes (--api-workers 3), and moto unless on LocalStack
    on_localstack = os.environ.get("WEBHOOKS_TEST_TARGET") == "localstack"
    assert len(children) == (4 if on_localstack else 5)
    assert first.stop() == 0
    assert not any(pid_alive(pid) for pid in children)
    assert not (data_dir / "state.json").exists()

    second = RuntimeProcess(None, {"POWERTOOLS_LOG_LEVEL": "WARNING"}, data_dir)
    try:
        assert second.state["env"]["MONGO_URI"] != mongo_uri  # a new server, the same data
        status, _ = second.post([{"eventType": "order.created", "data": {}}], partners["orders"]["apiKey"])
        assert status == 202
    finally:
        assert second.stop() == 0


def test_dead_letters_and_retries_waiting_survive_a_stop_and_start(tmp_path: Path) -> None:
    if os.environ.get("WEBHOOKS_TEST_TARGET") == "localstack":
        pytest.skip("LocalStack keeps its own queues; this is the embedded SQS server's snapshot")
    receiver = Receiver([Reply(410), Reply(500)])  # the first dead-lettered at once, then retries
    spec = partner_spec("keeper", receiver.url, ["keep.*"])
    env = {"WEBHOOK_RETRY_DELAY": "8000", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    first = RuntimeProcess([spec], env, tmp_path / "local")
    try:
        _, body = first.post([{"eventType": "keep.dead", "data": {}}], spec["apiKey"])
        dead = body["results"][0]["eventId"]
        wait_until(lambda: [d["eventId"] for d in first.cli("dlq", "list", "--json")] == [dead], timeout=15)
        _, body = first.post([{"eventType": "keep.retry", "data": {}}], spec["apiKey"])
        waiting = body["results"][0]["eventId"]
        partner_id = first.cli("dlq", "list", "--json")[0]["partnerId"]

        def retry_waiting() -> bool:  # recorded after its copy went back to the queue, 8 s away
            log = first.cli("deliveries", "list", "--partner", partner_id, "--event-id", waiting, "--json")
            return any(d["outcome"] == "retry" for d in log["deliveries"])

        receiver.wait_for(2)  # its first attempt failed...
        wait_until(retry_waiting, timeout=15, interval=0.3)  # ...and its retry waits in the queue
    finally:
        assert first.stop() == 0
    restarted_at = time.time()
    second = RuntimeProcess(None, env, tmp_path / "local")
    try:
        assert [d["eventId"] for d in second.cli("dlq", "list", "--json")] == [dead]
        [retry] = receiver.wait_for(3, timeout=30)[2:]
        assert retry.event_id == waiting and retry.at > restarted_at
    finally:
        assert second.stop() == 0
        receiver.close()


def test_a_burst_of_sigterms_stops_the_runtime_and_all_it_started(
    runtime: RuntimeProcess, partners: dict[str, Any]
) -> None:
    # signal handlers nest when signals come faster than they run; one that waited for a
    # lock its own thread held left the process hanging (webhooks_cli.stop_signals)
    burst = RuntimeProcess(
        [partners["orders"]], {"POWERTOOLS_LOG_LEVEL": "WARNING"}, runtime.data_dir.parent / "burst"
    )
    children = child_pids(burst.process.pid)
    assert children  # SecantusDB, the API workers, moto unless on LocalStack
    try:
        sigterm_burst(burst.process.pid)
        assert burst.process.wait(timeout=60) == 0
        wait_until(lambda: not any(pid_alive(pid) for pid in children), timeout=10)
    finally:
        if burst.process.poll() is None:  # it hung: neither it nor what it started is left behind
            for pid in children:  # still its children (not reaped), so still these processes
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            burst.process.kill()
