"""Per-partner headers and timeouts through the management API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import Stack
from support import api_event

ADMIN = {"X-Admin-Key": "settings-admin"}


@pytest.fixture
def call(stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ADMIN_API_KEY", "settings-admin")
    handler = function("ingest")

    def request(method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any]]:
        result = handler(
            api_event(json.dumps(body) if body is not None else None, method=method, path=path, headers=ADMIN)
        )
        return result["statusCode"], json.loads(result["body"])

    return request


def test_headers_and_timeout_are_set_validated_and_never_shown(stack: Stack, call: Any) -> None:
    status, created = call(
        "POST",
        "/api/v1/admin/partners",
        {
            "name": "Acme",
            "webhookUrl": "https://acme.example/h",
            "events": ["order.*"],
            "headers": {"Authorization": "Bearer s3cret"},
            "timeoutMs": 1500,
        },
    )
    assert status == 201
    assert created["headers"] == {"Authorization": "***"} and created["timeoutMs"] == 1500
    partner = stack.store().get(created["partnerId"])
    assert dict(partner.headers) == {"Authorization": "Bearer s3cret"} and partner.timeout_ms == 1500

    path = f"/api/v1/admin/partners/{created['partnerId']}"
    for bad in (
        {"headers": {"X-Recart-Event-Id": "x"}},
        {"headers": {"webhook-signature": "x"}},
        {"headers": {"Content-Type": "text/plain"}},
        {"headers": {"Bad Name": "x"}},
        {"headers": {"X-Ok": "line\r\nbreak"}},
        {"timeoutMs": 50},
        {"timeoutMs": 60_000},
    ):
        status, body = call("PATCH", path, bad)
        assert status == 400, (bad, body)
    status, body = call("PATCH", path, {"headers": {}, "timeoutMs": 800})
    assert status == 200 and body["headers"] == {} and body["timeoutMs"] == 800
    status, body = call("GET", path)
    assert "s3cret" not in json.dumps(body)
