"""Hostile requests sent over HTTP to `webhooks local` are refused with clear answers: forged
platform events, schema $refs, header values, non-finite numbers, dates, private URLs, bad
Content-Length. They are the adversarial probe's own commands, replayed; the probe ran with
ALLOW_PRIVATE_DESTINATIONS=false, and so does this runtime.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from runtime_process import RuntimeProcess
from support import Receiver, partner_spec

pytestmark = pytest.mark.e2e
ADMIN_KEY = f"admin-{os.urandom(8).hex()}"
ADMIN = {"X-Admin-Key": ADMIN_KEY}


@pytest.fixture(scope="module")
def target() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def producer(target: Receiver) -> dict[str, Any]:
    return partner_spec("probe", target.url, ["order.*"])


@pytest.fixture(scope="module")
def runtime(producer: dict[str, Any]) -> Iterator[RuntimeProcess]:
    env = {
        "ADMIN_API_KEY": ADMIN_KEY,
        "ALLOW_PRIVATE_DESTINATIONS": "false",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    process = RuntimeProcess([producer], env=env)
    yield process
    process.stop()


def partner_id(runtime: RuntimeProcess) -> str:
    status, body = runtime.request("GET", "/api/v1/admin/partners", headers=ADMIN)
    assert status == 200
    return str(body["partners"][0]["partnerId"])


def test_a_forged_endpoint_disabled_event_is_refused(
    runtime: RuntimeProcess, producer: dict[str, Any]
) -> None:
    status, body = runtime.post(
        [{"eventType": "endpoint.disabled", "data": {"partnerId": "x"}}], producer["apiKey"]
    )
    assert status == 403 and "reserved for the platform" in body["error"]


def test_a_schema_ref_to_a_loopback_receiver_is_refused_and_not_fetched(
    runtime: RuntimeProcess, target: Receiver
) -> None:
    before = len(target.requests)
    schema = {"type": "object", "properties": {"x": {"$ref": target.url}}}
    status, body = runtime.request(
        "PUT", "/api/v1/admin/event-types/order.created", {"schema": schema}, ADMIN
    )
    assert status == 400 and "points outside the schema" in body["error"]
    status, body = runtime.request(
        "PUT", "/api/v1/admin/event-types/order.created", {"schema": {"$ref": "file:///etc/passwd"}}, ADMIN
    )
    assert status == 400 and "root:" not in str(body)
    assert len(target.requests) == before


def test_a_header_value_with_a_leading_space_is_refused_without_echoing_it(runtime: RuntimeProcess) -> None:
    status, body = runtime.request(
        "PATCH",
        f"/api/v1/admin/partners/{partner_id(runtime)}",
        {"headers": {"Authorization": " Bearer pr0be"}},
        ADMIN,
    )
    assert status == 400 and "pr0be" not in str(body)


def test_a_non_finite_number_is_refused_naming_its_field(
    runtime: RuntimeProcess, producer: dict[str, Any]
) -> None:
    raw = b'[{"eventType":"order.created","data":{"x":1e999}}]'
    status, body = runtime.post([], producer["apiKey"], raw=raw)
    assert status == 400 and body["error"].startswith(
        "Invalid request body. Errors: [0].data.x: number 1e999"
    )


@pytest.mark.parametrize("query", ["since=0001-01-01T00:00:00%2B01:00", "until=9999-12-31T23:59:59-01:00"])
def test_dates_outside_what_utc_can_hold_are_a_400(runtime: RuntimeProcess, query: str) -> None:
    status, body = runtime.request(
        "GET", f"/api/v1/admin/partners/{partner_id(runtime)}/deliveries?{query}", headers=ADMIN
    )
    assert status == 400 and "out of range" in body["error"]


def test_loopback_and_metadata_urls_are_refused_at_create(runtime: RuntimeProcess) -> None:
    for url in ("http://127.0.0.1:9/h", "http://169.254.169.254/latest", "http://[::127.0.0.1]/h"):
        status, body = runtime.request(
            "POST", "/api/v1/admin/partners", {"name": "x", "webhookUrl": url}, ADMIN
        )
        assert status == 400 and "loopback, private" in body["error"], url


@pytest.mark.parametrize("length", [b"-1", b"abc"])
def test_a_bad_content_length_is_answered_400(runtime: RuntimeProcess, length: bytes) -> None:
    with socket.create_connection(("127.0.0.1", runtime.port), timeout=10) as sock:
        sock.sendall(b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):  # the server closes the connection after answering
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400") and b"Invalid Content-Length" in reply
