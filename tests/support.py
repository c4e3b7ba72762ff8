"""Test helpers: a programmable webhook receiver, queue readers, API Gateway and SQS events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple

import yaml

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"


def partner_spec(name: str, url: str, events: list[str], active: bool = True) -> dict[str, Any]:
    """A partner as `webhooks local --partners` takes it, with a fresh API key and secret."""
    from webhooks.delivery.signing import generate_secret

    return {
        "name": name,
        "webhookUrl": url,
        "apiKey": f"key-{name}-{os.urandom(6).hex()}",
        "secretKey": generate_secret(),
        "events": events,
        "isActive": active,
    }


def sqs_client_for(endpoint_url: str) -> Any:
    """A boto3 SQS client for an emulator (any credentials do)."""
    import boto3

    return boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        """The webhook's event id, from either signature scheme's header."""
        lowered = {k.lower(): v for k, v in self.headers.items()}
        return lowered.get("webhook-id") or lowered.get("x-recart-event-id") or ""


@dataclass
class Reply:
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request.

    ``script`` is the sequence of replies for successive requests (the last repeats);
    ``port`` 0 takes a free one.
    """

    def __init__(self, script: list[Reply] | None = None, port: int = 0) -> None:
        self.script = script or [Reply()]
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = receiver._record(Received(self.path, dict(self.headers.items()), body, time.time()))
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def _record(self, received: Received) -> Reply:
        with self._arrived:
            index = len(self.requests)
            self.requests.append(received)
            self._arrived.notify_all()
        return self.script[min(index, len(self.script) - 1)]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} requests, got {len(self.requests)} in {timeout}s")
                self._arrived.wait(left)
            return list(self.requests)

    def event_ids(self) -> list[str]:
        with self._lock:
            return [r.headers["X-Recart-Event-Id"] for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def api_event(
    body: str | None,
    api_key: str | None = None,
    method: str = "POST",
    path: str = "/api/v1/events",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST proxy event (payload 1.0), from events/api-post-events.json."""
    event: dict[str, Any] = json.loads((EVENTS_DIR / "api-post-events.json").read_text())
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if api_key is not None:
        all_headers["X-API-Key"] = api_key
    event.update(
        httpMethod=method,
        path=path,
        body=body,
        headers=all_headers,
        multiValueHeaders={k: [v] for k, v in all_headers.items()},
        pathParameters={"proxy": path.lstrip("/")},
    )
    event["requestContext"] = {
        **event["requestContext"],
        "httpMethod": method,
        "requestId": str(uuid.uuid4()),
    }
    return event


ADMIN_KEY = "test-admin-key"
"""The admin key the ``api`` fixture sets (ADMIN_API_KEY) and sends."""


class Answer(NamedTuple):
    status: int
    body: Any  # the parsed JSON when the answer is JSON, else its text
    headers: dict[str, str]


class IngestApi:
    """The ingest handler called as API Gateway calls it, loaded at the first call (so a test
    may set environment variables first). Sends the admin key unless ``admin=False`` or the
    headers carry another ``X-Admin-Key``."""

    def __init__(self, load: Callable[[], Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
        self._load = load
        self._handler: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    def handle(
        self,
        method: str,
        path: str,
        text: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        source_ip: str = "203.0.113.10",
        admin: bool = True,
    ) -> dict[str, Any]:
        """The handler's own result (statusCode, headers, body) for one request."""
        if self._handler is None:
            self._handler = self._load()
        sent = {**({"X-Admin-Key": ADMIN_KEY} if admin else {}), **(headers or {})}
        event = api_event(text, method=method, path=path, headers=sent)
        # the local server and API Gateway hand the query over parsed, in both forms
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
        event["requestContext"]["identity"]["sourceIp"] = source_ip
        return self._handler(event)

    def __call__(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        *,
        raw: str | None = None,
        source_ip: str = "203.0.113.10",
        admin: bool = True,
    ) -> Answer:
        """One request with ``body`` sent as JSON (or ``raw`` text as it is)."""
        text = raw if raw is not None else (json.dumps(body) if body is not None else None)
        result = self.handle(method, path, text, headers, query, source_ip, admin)
        reply_headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
        reply_headers.update(result.get("headers") or {})
        reply = result.get("body")
        is_json = reply_headers.get("Content-Type", "").split(";")[0] == "application/json"
        return Answer(result["statusCode"], json.loads(reply) if is_json and reply else reply, reply_headers)

    def publish(self, api_key: str, events: list[dict[str, Any]]) -> tuple[int, Any]:
        """POST /api/v1/events as the producer with ``api_key``: (status, body)."""
        status, body, _ = self("POST", "/api/v1/events", events, headers={"X-API-Key": api_key})
        return status, body


def drain(client: Any, queue_url: str, wait: int = 0, max_messages: int = 1000) -> list[dict[str, Any]]:
    """Receive (and delete) every visible message of a queue."""
    found: list[dict[str, Any]] = []
    while len(found) < max_messages:
        response = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        batch = response.get("Messages", [])
        if not batch:
            return found
        found.extend(batch)
        client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return found


def sqs_event(messages: list[dict[str, Any]], queue_url: str) -> dict[str, Any]:
    from webhooks_cli.poller import to_lambda_record

    return {"Records": [to_lambda_record(m, queue_url) for m in messages]}


def receive(client: Any, queue_url: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Receive (without deleting) ``count`` messages, waiting for them up to ``timeout``."""
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        response = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, count - len(found)),
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        found.extend(response.get("Messages", []))
    return found


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)


class CountingReceiver:
    """A lean keep-alive receiver for load: records (eventId, arrival time, status) only."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.arrivals: list[tuple[str, float, int]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.status
                with receiver.lock:
                    receiver.arrivals.append((self.headers.get("X-Recart-Event-Id", ""), time.time(), status))
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def delivered(self) -> list[str]:
        with self.lock:
            return [e for e, _, status in self.arrivals if 200 <= status < 300]

    def first_success(self) -> dict[str, float]:
        first: dict[str, float] = {}
        with self.lock:
            for event_id, at, status in self.arrivals:
                if 200 <= status < 300 and event_id not in first:
                    first[event_id] = at
        return first

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) kept as dicts."""


def _construct(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)  # YAML has no fourth kind of node
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct)


_BURST = """
import os, signal, sys
for _ in range(int(sys.argv[2])):
    try:
        os.kill(int(sys.argv[1]), signal.SIGTERM)
    except ProcessLookupError:
        break
"""


def sigterm_burst(pid: int, count: int = 2000) -> None:
    """SIGTERMs as fast as a process of their own sends them (this one's threads would slow
    the loop down): they come faster than the handlers run, which then nest."""
    subprocess.run([sys.executable, "-c", _BURST, str(pid), str(count)], check=True, timeout=60)


def run_cli(capsys: Any, *argv: str) -> tuple[int, Any, str]:
    """The ``webhooks`` CLI in-process: (exit code, stdout as JSON when it is, stderr)."""
    from webhooks_cli.main import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out), err
    except ValueError:
        return code, out, err
