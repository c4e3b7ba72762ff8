"""Shared fixtures: real servers for the whole session, a fresh namespace per test.

moto's SQS server and SecantusDB are started once on free 127.0.0.1 ports and stopped
at the end. AWS_ENDPOINT_URL / MONGO_URI already set in the environment win, so the same
tests run against LocalStack or a real MongoDB.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from webhooks.config import Settings, load_settings
from webhooks.models import DeliveryMessage, Event, new_event_id, utc_timestamp
from webhooks.partners.store import PartnerStore
from webhooks_cli.lambdas import LambdaContext, load_handler
from webhooks_cli.servers import start_mongo, start_sqs
from webhooks_cli.topology import create_queues

from support import ADMIN_KEY, IngestApi, Receiver, receive, sqs_client_for, sqs_event

# the deploy suite's fixtures (Python 3.12, the AWS emulator, the SAM builds)
pytest_plugins = ["deploy.fixtures"]

# Every process the tests start inherits this, so the session can check at its end that none
# outlived it (an API worker once hung on a burst of SIGTERMs and stayed after CI).
os.environ["WEBHOOKS_TEST_SESSION"] = uuid.uuid4().hex
LEFT_RUNNING_GRACE_SECONDS = 15  # for processes still exiting when the last test ends


def _left_running() -> list[tuple[int, str]]:
    """(pid, command line) of live processes carrying this session's mark, this one excepted."""
    mark = f"WEBHOOKS_TEST_SESSION={os.environ['WEBHOOKS_TEST_SESSION']}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:  # a zombie's environment reads empty; a process may end while this looks
            if mark in (entry / "environ").read_bytes().split(b"\0"):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                found.append((int(entry.name), command.strip()[:200]))
        except OSError:
            continue
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the session if a process a test started is still running (and stop it)."""
    deadline = time.monotonic() + LEFT_RUNNING_GRACE_SECONDS
    left = _left_running()
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _left_running()
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for pid, command in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if reporter is not None:
            reporter.write_line(f"LEFT RUNNING after the tests (killed now): pid {pid}: {command}", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def sqs_endpoint() -> Iterator[str]:
    if os.environ.get("AWS_ENDPOINT_URL"):
        yield os.environ["AWS_ENDPOINT_URL"]
        return
    server = start_sqs()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mongo_uri() -> Iterator[str]:
    if os.environ.get("MONGO_URI"):
        yield os.environ["MONGO_URI"]
        return
    server = start_mongo()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sqs(sqs_endpoint: str) -> Any:
    return sqs_client_for(sqs_endpoint)


@pytest.fixture(scope="session")
def mongo_client(mongo_uri: str) -> Iterator[MongoClient[Any]]:
    client: MongoClient[Any] = MongoClient(mongo_uri, tz_aware=True)
    yield client
    client.close()


@dataclass
class Stack:
    """One test's own database and queues, and the environment pointing at them."""

    env: dict[str, str]
    sqs: Any
    db_name: str
    mongo_client: MongoClient[Any]

    @property
    def settings(self) -> Settings:
        return load_settings()

    @property
    def db(self) -> Any:
        return self.mongo_client[self.db_name]

    def store(self) -> PartnerStore:
        store = PartnerStore(self.db, cache_ttl=0)
        store.ensure_indexes()
        return store

    def url(self, name: str) -> str:
        return self.env[name]


@pytest.fixture
def stack(
    sqs: Any,
    sqs_endpoint: str,
    mongo_uri: str,
    mongo_client: MongoClient[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    prefix = f"t{uuid.uuid4().hex[:10]}-"
    urls = create_queues(sqs, prefix)
    db_name = f"test_{uuid.uuid4().hex[:12]}"
    env = {
        "AWS_ENDPOINT_URL": sqs_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "MONGO_URI": mongo_uri,
        "MONGO_DB_NAME": db_name,
        "ALLOW_PRIVATE_DESTINATIONS": "true",
        "CACHE_TTL_SECONDS": "0",
        # the Node service's meaning, set on purpose: 3 quick attempts (1 s, 2 s), not the
        # standard schedule's day (delivery/schedule.py: service_default)
        "WEBHOOK_MAX_ATTEMPTS": "3",
        "WEBHOOK_RETRY_DELAY": "1000",
        "WEBHOOK_TIMEOUT": "2000",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "webhooks-test",
        **urls,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield Stack(env, sqs, db_name, mongo_client)
    for url in urls.values():
        with contextlib.suppress(Exception):  # a test may have deleted it on purpose
            sqs.delete_queue(QueueUrl=url)
    mongo_client.drop_database(db_name)


@pytest.fixture
def function(stack: Stack) -> Callable[[str], Callable[[dict[str, Any], Any], Any]]:
    """Import a function's handler fresh, with this test's environment (a cold start)."""

    def load(name: str) -> Callable[[dict[str, Any], Any], Any]:
        sys.modules.pop(f"webhooks_function_{name}", None)
        handler = load_handler(name)

        def invoke(event: dict[str, Any], context: Any = None) -> Any:
            return handler(event, context or LambdaContext(name, 30))

        return invoke

    return load


@pytest.fixture
def api(function: Callable[[str], Any], monkeypatch: pytest.MonkeyPatch) -> IngestApi:
    """The ingest handler with ADMIN_API_KEY set to support.ADMIN_KEY, called with
    api(method, path, body, headers, query, raw=, source_ip=, admin=) -> Answer(status, body,
    headers), or api.handle(...) for the handler's own result."""
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    return IngestApi(lambda: function("ingest"))


@pytest.fixture
def receiver_factory() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(*args: Any, **kwargs: Any) -> Receiver:
        receiver = Receiver(*args, **kwargs)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


class Delivery:
    """Puts delivery messages on the real queue and runs the handler on what SQS hands back."""

    def __init__(self, stack: Stack, handler: Any) -> None:
        self.stack = stack
        self.handler = handler
        self.queue = stack.url("DELIVERY_QUEUE_URL")

    def enqueue(
        self,
        partner_id: str,
        event_type: str = "order.created",
        data: dict[str, Any] | None = None,
        endpoint_id: str | None = None,
        event: Event | None = None,
    ) -> Event:
        """A delivery of a new event (or ``event``) to the partner's ``endpoint_id`` (None: its first)."""
        event = event or Event(
            eventId=new_event_id(),
            eventType=event_type,
            timestamp=utc_timestamp(),
            data=data if data is not None else {"orderId": "1234", "note": "naïve café"},
        )
        body = DeliveryMessage(partnerId=partner_id, endpointId=endpoint_id, event=event).as_body()
        self.stack.sqs.send_message(QueueUrl=self.queue, MessageBody=body)
        return event

    def run(self, count: int = 1, timeout: float = 5.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        messages = receive(self.stack.sqs, self.queue, count, timeout)
        assert len(messages) == count, f"expected {count} messages, SQS gave {len(messages)}"
        return self.handler(sqs_event(messages, self.queue)), messages

    def delete(self, result: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        """What the event source mapping does: delete what the handler did not report failed."""
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                self.stack.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=m["ReceiptHandle"])


@pytest.fixture
def delivery(stack: Stack, function: Callable[[str], Any]) -> Delivery:
    return Delivery(stack, function("deliver"))
