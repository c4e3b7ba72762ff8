"""Ingest's log lines name API Gateway's request id, so one producer's request can be found
in CloudWatch from the id API Gateway gave it."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from webhooks.observability import logger

from conftest import Stack
from support import EVENTS_DIR


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the ingest function's log lines would print (Lambda sends stdout to CloudWatch)."""
    written = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", written)
    return written


def lines(out: str) -> dict[str, dict[str, Any]]:
    return {line["message"]: line for line in map(json.loads, out.splitlines()) if "message" in line}


def sample_request(api_key: str) -> dict[str, Any]:
    """events/api-post-events.json as it is, with a real partner key."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / "api-post-events.json").read_text())
    event["headers"]["X-API-Key"] = api_key
    event["multiValueHeaders"]["X-API-Key"] = [api_key]
    return event


def test_ingest_log_lines_carry_the_api_gateway_request_id(
    stack: Stack, function: Any, output: io.StringIO
) -> None:
    key = stack.store().create("p", "https://p.example/h", ["*"]).api_key
    ingest = function("ingest")
    accepted, refused = sample_request(key), sample_request("not-a-key")
    refused["requestContext"]["requestId"] = "another-request"

    assert (ingest(accepted)["statusCode"], ingest(refused)["statusCode"]) == (202, 401)
    logged = lines(output.getvalue())
    assert logged["events enqueued"]["correlation_id"] == accepted["requestContext"]["requestId"]
    assert logged["request rejected"]["correlation_id"] == "another-request"
