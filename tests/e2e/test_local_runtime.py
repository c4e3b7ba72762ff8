"""End to end: `webhooks local` as a subprocess, real HTTP in, real receivers out."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from support import Receiver, Reply, wait_until

from webhooks.signing import generate_secret
from webhooks_cli.servers import free_port, pid_alive

pytestmark = pytest.mark.e2e
WEBHOOKS = str(Path(sys.executable).with_name("webhooks"))


class Runtime:
    def __init__(self, data_dir: Path, partners_file: Path | None, env: dict[str, str]) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.env = {**os.environ, **env, "WEBHOOKS_LOCAL_DIR": str(data_dir)}
        for name in (
            "AWS_ENDPOINT_URL",
            "MONGO_URI",
            "EVENTS_QUEUE_URL",
            "EVENTS_DLQ_URL",
            "DELIVERY_QUEUE_URL",
            "DELIVERY_DLQ_URL",
            "MONGO_DB_NAME",
        ):
            self.env.pop(name, None)  # the runtime starts its own embedded servers
        argv = [WEBHOOKS, "local", "--port", str(self.port)]
        if partners_file:
            argv += ["--partners", str(partners_file)]
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(
            lambda: any(line.startswith("API listening on") for line in self.lines) or self._died(),
            timeout=60,
        )
        assert self.process.poll() is None, "\n".join(self.lines)
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = json.loads((data_dir / "state.json").read_text())

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def _died(self) -> bool:
        return self.process.poll() is not None

    def post(self, events: list[dict[str, Any]], api_key: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{self.url}/api/v1/events",
            data=json.dumps(events).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "X-API-Key": api_key},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def cli(self, *args: str) -> Any:
        result = subprocess.run([WEBHOOKS, *args], env=self.env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if "--json" in args or args[0] == "partners" else result.stdout

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


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
def runtime(tmp_path_factory: pytest.TempPathFactory, partners: dict[str, Any]) -> Iterator[Runtime]:
    data_dir = tmp_path_factory.mktemp("local")
    partners_file = data_dir / "partners.json"
    partners_file.write_text(json.dumps(list(partners.values())))
    env = {"WEBHOOK_RETRY_DELAY": "1000", "CACHE_TTL_SECONDS": "0", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    rt = Runtime(data_dir, partners_file, env)
    yield rt
    if rt.process.poll() is None:
        rt.stop()


def test_signed_webhooks_reach_exactly_the_subscribers(
    runtime: Runtime, partners: dict[str, Any], receivers: dict[str, Receiver]
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


def test_retries_follow_the_backoff_schedule(
    runtime: Runtime, partners: dict[str, Any], receivers: dict[str, Receiver]
) -> None:
    status, body = runtime.post([{"eventType": "flaky.event", "data": {}}], partners["flaky"]["apiKey"])
    assert status == 202
    attempts = receivers["flaky"].wait_for(3, timeout=15)
    gaps = [attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at]
    assert 0.9 <= gaps[0] <= 2.5, gaps  # 1 s visibility (+ up to one long-poll turn)
    assert 1.9 <= gaps[1] <= 3.5, gaps  # 2 s
    assert {a.headers["webhook-id"] for a in attempts} == {body["results"][0]["eventId"]}
    time.sleep(1.5)
    assert len(receivers["flaky"].requests) == 3  # delivered on the third: no more attempts


def test_dead_letters_are_listed_and_redriven(
    runtime: Runtime, partners: dict[str, Any], receivers: dict[str, Receiver]
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


def test_the_cli_finds_the_running_runtime(runtime: Runtime, receivers: dict[str, Receiver]) -> None:
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


def test_clean_shutdown_and_data_survives_a_restart(runtime: Runtime, partners: dict[str, Any]) -> None:
    # a throwaway runtime of its own, so the module's runtime is left alone
    data_dir = runtime.data_dir.parent / "restart"
    partners_file = data_dir.parent / "restart-partners.json"
    partners_file.write_text(json.dumps([partners["orders"]]))
    first = Runtime(data_dir, partners_file, {"POWERTOOLS_LOG_LEVEL": "WARNING"})
    mongo_uri = first.state["env"]["MONGO_URI"]
    children = [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(first.process.pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    assert len(children) == 2  # moto and SecantusDB
    assert first.stop() == 0
    assert not any(pid_alive(pid) for pid in children)
    assert not (data_dir / "state.json").exists()

    second = Runtime(data_dir, None, {"POWERTOOLS_LOG_LEVEL": "WARNING"})
    try:
        assert second.state["env"]["MONGO_URI"] != mongo_uri  # a new server, the same data
        status, _ = second.post([{"eventType": "order.created", "data": {}}], partners["orders"]["apiKey"])
        assert status == 202
    finally:
        assert second.stop() == 0
