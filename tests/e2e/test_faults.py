"""Fault injection through `webhooks local`: the queue, the database and a worker going away.

The runtime here uses servers the test starts itself, so the test can stop and restart them
(on the same port) while the runtime keeps running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from webhooks_cli.servers import ServerProcess, start_mongo, start_sqs
from webhooks_cli.topology import create_queues

from runtime_process import RuntimeProcess
from support import Receiver, Reply, partner_spec, sqs_client_for, wait_until

pytestmark = pytest.mark.e2e


def port_of(server: ServerProcess) -> int:
    return int(server.url.split(":")[2].split("/")[0].split("?")[0])


def sqs_client(url: str) -> Any:
    return sqs_client_for(url)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    """Every server a test starts goes here and is stopped at teardown, whatever happened."""
    made: list[ServerProcess] = []
    yield made
    for server in made:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_queue_outage_is_never_a_202_and_the_pollers_resume(
    receiver: Receiver, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    sqs, mongo = start_sqs(), start_mongo()
    servers += [sqs, mongo]
    partner = partner_spec("p", receiver.url, ["order.*"])
    runtime = RuntimeProcess(
        [partner],
        {"AWS_ENDPOINT_URL": sqs.url, "MONGO_URI": mongo.url, "POWERTOOLS_LOG_LEVEL": "WARNING"},
        tmp_path / "local",
    )
    accepted: list[str] = []
    try:
        status, body = runtime.post([{"eventType": "order.created", "data": {"n": 0}}], partner["apiKey"])
        assert status == 202
        accepted.append(body["results"][0]["eventId"])
        receiver.wait_for(1)

        sqs.stop()  # the queue goes away mid-stream
        for n in range(5):
            status, body = runtime.post(
                [{"eventType": "order.created", "data": {"n": n}}] * 3, partner["apiKey"]
            )
            assert status == 503, body  # never 202 for events that are not queued
            assert {r["status"] for r in body["results"]} == {"failed"}

        sqs = start_sqs(port=port_of(sqs))  # back, empty, on the same port
        servers.append(sqs)
        create_queues(sqs_client(sqs.url))
        for n in range(3):
            status, body = runtime.post([{"eventType": "order.updated", "data": {"n": n}}], partner["apiKey"])
            assert status == 202, body
            accepted.append(body["results"][0]["eventId"])
        wait_until(lambda: set(accepted) <= set(receiver.event_ids()), timeout=20)
        assert sorted(receiver.event_ids()) == sorted(accepted)  # every 202 delivered, once; nothing else
        assert runtime.process.poll() is None
        # it noticed, backed off, resumed (its output is read by a thread: wait for the line)
        wait_until(lambda: any("receive failed" in line for line in runtime.lines))
    finally:
        runtime.stop()
        sqs.stop()
        mongo.stop()


def test_database_outage_is_a_clear_503_and_nothing_is_lost(
    receiver: Receiver, tmp_path: Path, servers: list[ServerProcess]
) -> None:
    storage = tmp_path / "mongo"
    sqs, mongo = start_sqs(), start_mongo(storage=storage)
    servers += [sqs, mongo]
    orders = partner_spec("orders", receiver.url, ["order.*"])
    other = partner_spec("other", "https://other.example/h", ["nothing.here"])
    runtime = RuntimeProcess(
        [orders, other],
        {
            "AWS_ENDPOINT_URL": sqs.url,
            "MONGO_URI": mongo.url,
            "WEBHOOK_RETRY_DELAY": "1000",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "ADMIN_API_KEY": "faults-admin",
        },
        tmp_path / "local",
        # one API process: what its caches hold is what this test is about (each Lambda
        # execution environment, like each API process, has caches of its own)
        api_workers=1,
    )
    try:
        status, body = runtime.post([{"eventType": "order.created", "data": {}}], orders["apiKey"])
        first = body["results"][0]["eventId"]
        receiver.wait_for(1)  # the API key, partner and subscribers of order.created are now cached
        # ingest learns order.shipped's schema (a rejected event: dispatch never sees the type)
        schema = {"schema": {"type": "object", "required": ["orderId"]}}
        admin = {"X-Admin-Key": "faults-admin"}
        assert runtime.request("PUT", "/api/v1/admin/event-types/order.shipped", schema, admin)[0] == 200
        assert runtime.post([{"eventType": "order.shipped", "data": {}}], orders["apiKey"])[0] == 400

        mongo.stop()
        # a key the API has not seen: it cannot be checked, and the answer says so
        status, body = runtime.post([{"eventType": "order.created", "data": {}}], other["apiKey"])
        assert (status, body) == (503, {"error": "Service temporarily unavailable, please retry"})
        # nor can a type whose schema the API has not seen
        status, body = runtime.post([{"eventType": "order.returned", "data": {}}], orders["apiKey"])
        assert (status, body) == (503, {"error": "Service temporarily unavailable, please retry"})
        # a known key and type are still accepted (from the caches); the event cannot be dispatched yet
        status, body = runtime.post(
            [{"eventType": "order.shipped", "data": {"orderId": "1"}}], orders["apiKey"]
        )
        assert status == 202
        during = body["results"][0]["eventId"]
        time.sleep(3)
        assert receiver.event_ids() == [first]

        mongo = start_mongo(storage=storage, port=port_of(mongo))
        servers.append(mongo)
        wait_until(lambda: during in receiver.event_ids(), timeout=30)  # left for redelivery, then delivered
        assert sorted(receiver.event_ids()) == sorted([first, during])
    finally:
        runtime.stop()
        sqs.stop()
        mongo.stop()


def test_a_deliver_worker_killed_mid_batch_delivers_once_more_at_most(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    sqs, mongo = start_sqs(), start_mongo()
    servers += [sqs, mongo]
    # a short visibility timeout, so the message is back in seconds (the template's is 6 minutes)
    sqs_client(sqs.url).create_queue(QueueName="webhooks-delivery", Attributes={"VisibilityTimeout": "3"})
    slow = Receiver([Reply(200, delay=2.0)])
    partner = partner_spec("slow", slow.url, ["order.*"])
    env = {"AWS_ENDPOINT_URL": sqs.url, "MONGO_URI": mongo.url, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    second = None
    try:
        first = RuntimeProcess([partner], env, tmp_path / "one")
        status, body = first.post([{"eventType": "order.created", "data": {}}], partner["apiKey"])
        event_id = body["results"][0]["eventId"]
        slow.wait_for(1)  # the POST is in flight...
        first.kill()  # ...when the worker dies (SIGKILL: no clean-up at all)
        slow.script = [Reply(200)]
        second = RuntimeProcess(None, env, tmp_path / "two")
        slow.wait_for(2, timeout=15)  # back after the visibility timeout, delivered again
        time.sleep(5)  # and then not again
        assert slow.event_ids() == [event_id, event_id]
    finally:
        if second:
            second.stop()
        slow.close()
        sqs.stop()
        mongo.stop()
