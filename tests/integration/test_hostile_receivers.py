"""Receivers that misbehave on purpose: hang, drip, reset, send 1 GB slowly, redirect.

Each is a real socket server on 127.0.0.1; the POST goes through the same client the
deliver function uses (`webhooks.delivery.http.post`), and through the handler where the
outcome matters.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from webhooks.delivery.http import WebhookClient, post

TIMEOUT = 1.0


class RawServer:
    """Accepts connections and hands each to ``behaviour(conn)`` in a thread."""

    def __init__(self, behaviour: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.behaviour = behaviour
        self.connections = 0
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.behaviour(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self.sock.close()


def read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        0,
    )
    while len(rest) < length:
        rest += conn.recv(65536)


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[socket.socket], None]], RawServer]]:
    servers: list[RawServer] = []

    def make(behaviour: Callable[[socket.socket], None]) -> RawServer:
        server = RawServer(behaviour)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def deliver_once(url: str) -> tuple[Any, float]:
    client = WebhookClient(2, allow_private=True)
    started = time.monotonic()
    result = post(client, url, b'{"eventId":"e"}', {"Content-Type": "application/json"}, TIMEOUT, 65_536)
    return result, time.monotonic() - started


def test_a_receiver_that_never_answers_is_cut_at_the_timeout(serve: Any) -> None:
    def hold(conn: Any) -> None:
        read_request(conn)
        time.sleep(10)

    server = serve(hold)
    result, elapsed = deliver_once(server.url)
    assert result.status is None and result.error_class == "Timeout"
    assert elapsed < TIMEOUT + 0.5


def test_headers_dripped_a_byte_at_a_time_are_cut_at_the_timeout_too(serve: Any) -> None:
    def drip(conn: socket.socket) -> None:
        read_request(conn)
        for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
            conn.sendall(bytes([byte]))
            time.sleep(0.3)  # each read is quick; the whole exchange is not

    server = serve(drip)
    result, elapsed = deliver_once(server.url)
    assert result.status is None and "timed out" in (result.error or "")
    assert elapsed < TIMEOUT + 0.5


def test_a_connection_reset_is_a_failed_attempt(serve: Any) -> None:
    def reset(conn: socket.socket) -> None:
        read_request(conn)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close

    server = serve(reset)
    result, elapsed = deliver_once(server.url)
    assert result.status is None and result.error and not result.ok
    assert elapsed < TIMEOUT


def test_one_gigabyte_sent_slowly_is_read_capped_and_time_boxed(serve: Any) -> None:
    sent = [0]

    def huge(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n")
        chunk = b"x" * 1024
        while sent[0] < 1 << 30:
            conn.sendall(chunk)
            sent[0] += len(chunk)
            time.sleep(0.01)

    server = serve(huge)
    result, elapsed = deliver_once(server.url)
    assert result.status == 200 and result.ok  # the status line is what counts
    assert len(result.body_excerpt) <= 65_536
    assert elapsed < TIMEOUT + 0.5
    assert sent[0] < 10 * 1024 * 1024  # we stopped reading long before a gigabyte


def test_a_fast_1_gb_body_is_read_only_up_to_the_cap(serve: Any) -> None:
    def flood(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 1073741824\r\n\r\n")
        chunk = b"y" * 65536
        for _ in range(16384):
            conn.sendall(chunk)

    server = serve(flood)
    result, elapsed = deliver_once(server.url)
    assert result.status == 500 and len(result.body_excerpt) == 65_536
    assert elapsed < TIMEOUT + 0.5


def test_connections_are_reused_after_a_clean_exchange_not_after_a_cut_one(serve: Any) -> None:
    def ok_keepalive(conn: socket.socket) -> None:
        while True:
            read_request(conn)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    server = serve(ok_keepalive)
    client = WebhookClient(2, allow_private=True)
    for _ in range(5):
        assert post(client, server.url, b"{}", {}, TIMEOUT, 1024).ok
    assert server.connections == 1  # keep-alive across deliveries
