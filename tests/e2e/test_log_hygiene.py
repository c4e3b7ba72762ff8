"""The whole pipeline's logs carry no API key, secret or webhook body."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from webhooks.delivery.signing import generate_secret

from runtime_process import RuntimeProcess
from support import Receiver, Reply, wait_until

pytestmark = pytest.mark.e2e


def test_no_api_key_secret_or_payload_in_any_log_line(tmp_path: Path) -> None:
    ok, failing = Receiver(), Receiver([Reply(500, body=b"upstream said no")])
    partners: list[dict[str, Any]] = [
        {
            "name": name,
            "webhookUrl": r.url,
            "apiKey": f"apikey-{name}-{os.urandom(8).hex()}",
            "secretKey": generate_secret(),
            "events": ["order.*"],
            "isActive": True,
        }
        for name, r in (("ok", ok), ("failing", failing))
    ]
    env = {
        "POWERTOOLS_LOG_LEVEL": "DEBUG",
        "WEBHOOK_RETRY_DELAY": "1000",
        "WEBHOOK_MAX_ATTEMPTS": "2",
        "POWERTOOLS_METRICS_DISABLED": "false",
    }
    runtime = RuntimeProcess(partners, env, tmp_path / "local")
    marker = f"card-{os.urandom(6).hex()}"
    try:
        for key in (partners[0]["apiKey"], partners[0]["apiKey"] + "-wrong"):
            runtime.post([{"eventType": "order.created", "data": {"cardNumber": marker}}], key)
        runtime.post([], partners[1]["apiKey"], raw=b'{"broken json ' + marker.encode())
        ok.wait_for(1)
        failing.wait_for(2, timeout=10)
        wait_until(lambda: any("delivery dead-lettered" in line for line in runtime.lines), timeout=10)
    finally:
        runtime.stop()
        ok.close()
        failing.close()
    logs = "\n".join(runtime.lines)
    assert "delivery attempt" in logs and "events enqueued" in logs and "request rejected" in logs
    for partner in partners:
        assert partner["apiKey"] not in logs
        assert partner["secretKey"] not in logs and partner["secretKey"][6:] not in logs
    assert marker not in logs
    assert "upstream said no" not in logs  # partners' response bodies stay out too
