"""What a new user met in the first hour (issue 31: data bugs and friction), one test each."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.delivery_log import AttemptRecord, DeliveryLog
from webhooks_cli.main import main

from conftest import Stack
from support import api_event


def attempt(event_id: str, partner_id: str, at: datetime) -> AttemptRecord:
    return AttemptRecord(event_id, "order.created", partner_id, 1, "delivered", 200, 5.0, None, None, b"", at)


def test_deliveries_list_is_newest_first_whatever_order_the_log_was_written_in(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    log = DeliveryLog(stack.db)
    base = datetime(2026, 1, 1, 12, 0, 20, tzinfo=UTC)
    at = {name: base + timedelta(milliseconds=ms) for name, ms in [("a", 53), ("b", 48), ("c", 50)]}
    # two deliver invocations ending in the other order than their attempts began
    for names in (["a"], ["b", "c"], ["d1", "d2"]):
        buffer: list[dict[str, Any]] = []
        for name in names:
            log.record(attempt(f"event_{name}", "p1", at.get(name, at["c"])), buffer)  # d1, d2: c's ms
        log.flush(buffer)

    seen: list[str] = []
    cursor: list[str] = []
    while True:
        assert main(["deliveries", "list", "--partner", "p1", "--limit", "2", "--json", *cursor]) == 0
        page = json.loads(capsys.readouterr().out)
        seen += [d["eventId"] for d in page["deliveries"]]
        if not page["nextCursor"]:
            break
        cursor = ["--cursor", page["nextCursor"]]
    # newest first; the three written in the same millisecond by _id, newest written first
    assert seen == ["event_a", "event_d2", "event_d1", "event_c", "event_b"]


def get(function: Any, path: str, context_path: str | None = None) -> tuple[int, dict[str, str], str]:
    """A GET through the ingest handler; ``context_path``: the path as API Gateway saw it."""
    event = api_event(None, method="GET", path=path)
    event["requestContext"]["path"] = context_path or path
    result = function("ingest")(event)
    headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
    return result["statusCode"], {**headers, **(result.get("headers") or {})}, result["body"]


@pytest.mark.parametrize(
    ("requested", "server"), [("/api/v1/openapi.json", "/"), ("/Prod/api/v1/openapi.json", "/Prod")]
)
def test_the_served_document_names_the_server_it_was_served_from(
    stack: Stack, function: Any, requested: str, server: str
) -> None:
    status, _, body = get(function, "/api/v1/openapi.json", requested)
    doc = json.loads(body)
    assert status == 200 and doc["servers"] == [{"url": server}]
    assert "HTTPValidationError" not in body and '"422"' not in json.dumps(
        doc["paths"]["/api/v1/admin/partners"]
    )


def test_swagger_ui_is_served_under_a_csp_that_forbids_framing_and_inline_script(
    stack: Stack, function: Any
) -> None:
    status, headers, page = get(function, "/api/v1/docs")
    csp = headers["Content-Security-Policy"]
    assert status == 200 and "frame-ancestors 'none'" in csp and "script-src 'self';" in csp
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in page and "<style>" not in page  # no inline script or style
    scripts = re.findall(r'<script src="([^"]+)"', page) + re.findall(r'href="([^"]+\.css)"', page)
    assert scripts == ["docs/swagger-ui-bundle.js", "docs/swagger-init.js", "docs/swagger-ui.css"]
    for asset in scripts:  # relative to the page, the same policy on each
        status, headers, body = get(function, f"/api/v1/{asset}")
        assert status == 200 and body and headers["Content-Security-Policy"] == csp
    assert get(function, "/api/v1/docs/../../console")[0] == 404
