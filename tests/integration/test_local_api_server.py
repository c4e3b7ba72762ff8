"""The local API server (webhooks_cli.apigw): slow clients dropped, a stop answers the request in hand."""

from __future__ import annotations

import threading
from typing import Any


def test_the_local_api_server_drops_a_client_that_stops_sending() -> None:
    """A client that sends half a request must not hold a server thread forever."""
    import socket

    from webhooks_cli.apigw import ApiServer

    calls: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event)
        return {"statusCode": 200}

    server = ApiServer(handler, 0, read_timeout=0.5)
    server.start()
    try:
        for partial in (
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
        ):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(partial)
                assert sock.recv(4096) == b""  # closed by the server, no answer, handler not called
        assert calls == []
    finally:
        server.stop()


def test_a_stopping_local_api_answers_the_request_it_is_handling_and_refuses_new_ones() -> None:
    """`webhooks local` stops its API worker processes as soon as a stop begins: a request
    being handled then is still answered in full, and a later one on an open keep-alive
    connection is told 503 rather than cut off."""
    import http.client

    from webhooks_cli.apigw import ApiServer

    entered, release = threading.Event(), threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["httpMethod"] == "POST":  # held until the test lets it go
            entered.set()
            assert release.wait(10)
        return {"statusCode": 202, "body": '{"ok": true}'}

    server = ApiServer(handler, 0)
    server.start()
    first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    second = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    second.request("GET", "/health")  # an open keep-alive connection, answered before the stop
    assert second.getresponse().read() == b'{"ok": true}'
    replies: list[tuple[int, bytes]] = []

    def call() -> None:
        first.request("POST", "/api/v1/events", body=b"[]", headers={"Content-Type": "application/json"})
        reply = first.getresponse()
        replies.append((reply.status, reply.read()))

    caller = threading.Thread(target=call)
    caller.start()
    assert entered.wait(10)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive()  # waiting for the request in hand
    second.request("GET", "/health")
    late = second.getresponse()
    assert late.status == 503 and b"stopping" in late.read()
    release.set()
    caller.join(10)
    stopper.join(10)
    assert not stopper.is_alive()
    assert replies == [(202, b'{"ok": true}')]


def test_the_local_api_server_refuses_a_transfer_encoding_with_411_before_any_route() -> None:
    """Bodies are framed by Content-Length only (as the front door sees them on API Gateway):
    any Transfer-Encoding, valid or not, is a 411 in the service's error shape, and the
    handler (routes, auth) never sees the request."""
    import http.client
    import json

    from webhooks_cli.apigw import ApiServer

    calls: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event)
        return {"statusCode": 202, "body": "{}"}

    server = ApiServer(handler, 0)
    server.start()
    try:
        for coding in ("chunked", "T H"):
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.putrequest("POST", "/api/v1/events")
            conn.putheader("Transfer-Encoding", coding)
            conn.putheader("Content-Type", "application/json")
            conn.endheaders()
            if coding == "chunked":
                conn.send(b"2\r\n[]\r\n0\r\n\r\n")
            reply = conn.getresponse()
            assert reply.status == 411
            assert json.loads(reply.read()) == {
                "error": "Transfer-Encoding is not supported; send Content-Length"
            }
            conn.close()
        assert calls == []
    finally:
        server.stop()
