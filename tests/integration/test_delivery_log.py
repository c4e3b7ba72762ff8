"""The delivery log's writes, against the MongoDB-protocol server: half an invocation's
attempts go in while its other POSTs run, the rest at its end, and nothing is in flight
once ``flush`` returns (the batch is acknowledged after it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pymongo import MongoClient

from webhooks.delivery_log import AttemptRecord, DeliveryLog
from webhooks_cli.servers import free_port

from conftest import Stack


def attempt(partner_id: str, n: int) -> AttemptRecord:
    return AttemptRecord(
        f"event_{n:024d}",
        "order.created",
        partner_id,
        1,
        "delivered",
        200,
        4.0,
        None,
        None,
        b"",
        datetime.now(UTC),
    )


def test_half_the_batch_is_written_while_the_rest_is_still_running(stack: Stack) -> None:
    log = DeliveryLog(stack.db)
    buffer = log.buffer(10)
    for n in range(4):
        log.record(attempt("p1", n), buffer)
    assert buffer.early is None  # under half: nothing written yet
    log.record(attempt("p1", 4), buffer)
    assert buffer.early is not None
    assert len(buffer.early.result(timeout=5)) == 5
    assert stack.db["deliveryAttempts"].count_documents({"partnerId": "p1"}) == 5  # before the end
    for n in range(5, 10):
        log.record(attempt("p1", n), buffer)
    assert log.flush(buffer) == 10
    assert buffer.early is None and buffer.take() == []
    assert stack.db["deliveryAttempts"].count_documents({"partnerId": "p1"}) == 10
    [counters] = list(stack.db["deliveryStats"].find({"partnerId": "p1"}))
    assert counters["delivered"] == 10  # one upsert for both writes, after them


def test_a_single_record_is_written_once_at_the_end(stack: Stack) -> None:
    log = DeliveryLog(stack.db)
    buffer = log.buffer(1)
    log.record(attempt("p2", 0), buffer)
    assert buffer.early is None
    assert log.flush(buffer) == 1
    assert stack.db["deliveryAttempts"].count_documents({"partnerId": "p2"}) == 1


def test_the_log_off_writes_nothing(stack: Stack) -> None:
    log = DeliveryLog(stack.db, enabled=False)
    buffer = log.buffer(10)
    for n in range(10):
        log.record(attempt("p3", n), buffer)
    assert buffer.early is None and log.flush(buffer) == 0
    assert stack.db["deliveryAttempts"].count_documents({"partnerId": "p3"}) == 0


def test_a_database_away_loses_the_log_not_the_invocation(caplog: Any) -> None:
    """Both writes fail within their time limit, flush returns 0 and raises nothing."""
    client: MongoClient[Any] = MongoClient(
        f"mongodb://127.0.0.1:{free_port()}/", serverSelectionTimeoutMS=200
    )
    log = DeliveryLog(client["nowhere"])
    buffer = log.buffer(4)
    for n in range(4):
        log.record(attempt("p4", n), buffer)
    assert buffer.early is not None
    assert log.flush(buffer) == 0
    assert [r.getMessage() for r in caplog.records].count("delivery log not written") == 2
    client.close()


@pytest.mark.parametrize(("expected", "early_at"), [(0, 0), (1, 0), (2, 2), (3, 2), (10, 5), (11, 6)])
def test_the_early_write_takes_half_the_batch_rounded_up(expected: int, early_at: int) -> None:
    assert DeliveryLog.buffer(DeliveryLog.__new__(DeliveryLog), expected).early_at == early_at
