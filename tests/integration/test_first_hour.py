"""What a new user met in the first hour (issue 31: data bugs and friction), one test each."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.delivery_log import AttemptRecord, DeliveryLog
from webhooks_cli.main import main

from conftest import Stack


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
