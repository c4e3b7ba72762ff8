"""`webhooks local` in a terminal prints one short line per delivery; piped, JSON lines."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import requests

from webhooks_cli.servers import free_port

from runtime_process import WEBHOOKS, RuntimeProcess
from support import Receiver, partner_spec

HUMAN_DELIVERY = re.compile(
    r"^\d\d:\d\d:\d\d deliver\s+delivered\s+event_\w+…\s+partner …\w{8}\s+attempt 1: 200 in [\d.]+ ms$"
)


def test_human_lines_on_request_json_lines_when_piped() -> None:
    receiver = Receiver()
    spec = partner_spec("terminal", receiver.url, ["order.*"])
    for flag, human in (("human", True), ("auto", False)):  # auto: stdout is a pipe here
        runtime = RuntimeProcess([spec], args=["--log-format", flag])
        try:
            runtime.post([{"eventType": "order.created", "data": {"n": 1}}], spec["apiKey"])
            deadline = time.monotonic() + 10
            while not any("delivery attempt" in line or " deliver " in line for line in runtime.lines):
                assert time.monotonic() < deadline, runtime.lines[-20:]
                time.sleep(0.1)
        finally:
            runtime.stop()
        attempts = [line for line in runtime.lines if " deliver " in line or '"delivery attempt"' in line]
        if human:
            assert any(HUMAN_DELIVERY.match(line) for line in attempts), attempts
            assert not any(line.startswith('{"level"') for line in runtime.lines), runtime.lines[-5:]
        else:
            assert attempts and all(line.startswith("{") for line in attempts), attempts
    receiver.close()


def test_auto_is_human_in_a_terminal(tmp_path: Path) -> None:
    port = free_port()  # the demo partner and its receiver come with --demo
    primary, secondary = pty.openpty()
    env = {**os.environ, "WEBHOOKS_LOCAL_DIR": str(tmp_path), "POWERTOOLS_LOG_LEVEL": "INFO"}
    for name in ("AWS_ENDPOINT_URL", "MONGO_URI"):
        env.pop(name, None)
    process = subprocess.Popen(
        [WEBHOOKS, "local", "--port", str(port), "--demo"], stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while b"API listening" not in output:
            assert time.monotonic() < deadline and process.poll() is None, output[-2000:]
            if select.select([primary], [], [], 0.5)[0]:
                output += os.read(primary, 65536)
        key = re.search(rb"X-API-Key: (\S+?)['\"]", output)
        assert key, output[-2000:]
        requests.post(
            f"http://127.0.0.1:{port}/api/v1/events",
            json=[{"eventType": "order.created", "data": {"n": 1}}],
            headers={"X-API-Key": key.group(1).decode()},
            timeout=10,
        )
        # wait for both lines asserted below: the delivery's log line and the demo receiver's
        # print of the body (two processes writing to the terminal, in either order)
        while not re.search(rb" deliver [^\n]*delivered", output) or b'\n    {"eventId"' not in output:
            assert time.monotonic() < deadline, output[-2000:]
            if select.select([primary], [], [], 0.5)[0]:
                output += os.read(primary, 65536)
        while select.select([primary], [], [], 0.2)[0]:
            output += os.read(primary, 65536)
    finally:
        process.terminate()
        process.wait(30)
        os.close(primary)
    lines = output.decode(errors="replace").replace("\r", "").splitlines()
    assert any(" deliver " in line and "delivered" in line for line in lines), lines[-20:]
    assert not any(line.startswith('{"level"') for line in lines), lines[-20:]
    # each attempt once (no second "INFO ...: delivery attempt" line), named by its function
    assert not any("delivery attempt" in line or "service_undefined" in line for line in lines), lines[-20:]
    # the demo receiver's webhook body alone on its line: no log line glued to it
    bodies = [line.strip() for line in lines if line.startswith('    {"eventId"')]
    assert bodies and all(json.loads(body)["eventType"] == "order.created" for body in bodies)
