"""What the deliver function writes per attempt: CloudWatch Logs bills every byte, so a
delivered attempt gets a short line (or none, sampled); a failed one keeps the full line."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from webhooks.config import ConfigError, load_settings
from webhooks.observability import logger

from conftest import Delivery, Stack
from support import Reply

SHORT_KEYS = {"message", "event_id", "partner_id", "attempt", "status", "latency_ms", "outcome"}


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """What the deliver function's log lines would print (Lambda sends stdout to CloudWatch)."""
    written = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", written)
    return written


def attempt_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "delivery attempt"]


def partners(stack: Stack, receiver_factory: Any) -> tuple[str, str]:
    ok, failing = receiver_factory(), receiver_factory([Reply(500)])
    store = stack.store()
    return (
        store.create("ok", ok.url, ["order.created"]).partner.id,
        store.create("failing", failing.url, ["order.created"]).partner.id,
    )


def test_a_delivered_attempt_gets_a_short_line_and_a_failed_one_the_full_line(
    stack: Stack, delivery: Delivery, receiver_factory: Any, output: io.StringIO
) -> None:
    ok_id, failing_id = partners(stack, receiver_factory)
    delivered, failed = delivery.enqueue(ok_id), delivery.enqueue(failing_id)
    result, _ = delivery.run(2)
    assert result == {"batchItemFailures": []}
    lines = {line["event_id"]: line for line in attempt_lines(output.getvalue())}
    short = lines[delivered.eventId]
    assert set(short) == SHORT_KEYS
    assert (short["partner_id"], short["attempt"], short["status"], short["outcome"]) == (
        ok_id,
        1,
        200,
        "delivered",
    )
    full = lines[failed.eventId]  # what an operator needs to find a failed delivery, all of it
    assert {"level", "timestamp", "function_request_id", "event_type", "error", "retry_in_s"} <= set(full)
    assert (full["partner_id"], full["status"], full["outcome"], full["error"]) == (
        failing_id,
        500,
        "retry",
        "HTTP 500",
    )


def test_sampled_out_delivered_attempts_have_no_line_but_the_delivery_log_keeps_them(
    stack: Stack,
    function: Any,
    receiver_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    output: io.StringIO,
) -> None:
    monkeypatch.setenv("SUCCESS_LOG_SAMPLE_RATE", "0")
    delivery = Delivery(stack, function("deliver"))
    ok_id, failing_id = partners(stack, receiver_factory)
    delivered, failed = delivery.enqueue(ok_id), delivery.enqueue(failing_id)
    delivery.run(2)
    assert [line["event_id"] for line in attempt_lines(output.getvalue())] == [failed.eventId]
    logged = {d["eventId"]: d["outcome"] for d in stack.db["deliveryAttempts"].find()}
    assert logged == {delivered.eventId: "delivered", failed.eventId: "retry"}


@pytest.mark.parametrize("value", ["1.5", "-0.1", "often"])
def test_a_sample_rate_outside_0_to_1_fails_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("SUCCESS_LOG_SAMPLE_RATE", value)
    with pytest.raises(ConfigError, match="SUCCESS_LOG_SAMPLE_RATE"):
        load_settings()
