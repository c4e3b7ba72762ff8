"""A local HTTP server that speaks to a handler as API Gateway does (REST API, proxy, payload 1.0)."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .lambdas import Handler, LambdaContext

log = logging.getLogger("webhooks.local")

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's own payload limit
# a client that stops sending headers or body for this long is dropped (a slow or stuck
# client must not hold a server thread forever)
READ_TIMEOUT_SECONDS = 10.0
TEXT_TYPES = ("application/json", "text/", "application/xml", "application/x-www-form-urlencoded")


def to_proxy_event(
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    stage: str = "local",
) -> dict[str, Any]:
    parts = urlsplit(raw_path)
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        single[name] = value
        multi.setdefault(name, []).append(value)
    query_multi = parse_qs(parts.query, keep_blank_values=True) if parts.query else {}
    query = {k: v[-1] for k, v in query_multi.items()} or None
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    is_text = not content_type or content_type.lower().startswith(TEXT_TYPES)
    text: str | None = None
    if body and is_text:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            is_text = False
    now = time.time()
    return {
        "resource": "/{proxy+}",
        "path": parts.path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": multi or None,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": query_multi or None,
        "pathParameters": {"proxy": parts.path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            # the path as requested: served at the root, the URL has no stage in it (as SAM
            # local sends it); the API's document derives its ``servers`` from this
            "path": parts.path,
            "accountId": "000000000000",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {
                "sourceIp": source_ip,
                "userAgent": single.get("User-Agent") or single.get("user-agent"),
            },
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": (text if is_text else base64.b64encode(body).decode("ascii")) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


class _SharedPortServer(ThreadingHTTPServer):
    """Binds with SO_REUSEPORT: several processes listen on one port and the kernel spreads
    connections across them (``webhooks local --api-workers``)."""

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def hold_port(port: int, host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to ``port`` (a free one for 0) with SO_REUSEPORT that never listens: it
    keeps the port for the worker processes that bind and listen on it too, and takes no
    connection itself (the kernel spreads connections over listening sockets only)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class ApiServer:
    """Serves ``handler`` on 127.0.0.1:port until :meth:`stop`, one request at a time.

    One process is one Lambda execution environment: several serve one port in
    ``webhooks local`` (``reuse_port``), as API Gateway spreads requests over environments.
    """

    def __init__(
        self,
        handler: Handler,
        port: int,
        host: str = "127.0.0.1",
        timeout_seconds: float = 29,
        read_timeout: float = READ_TIMEOUT_SECONDS,
        reuse_port: bool = False,
    ) -> None:
        outer = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "webhooks-local"
            # Headers and body are separate writes; with Nagle on, the body would wait for
            # the client's delayed ACK (~40 ms on Linux) on every response.
            disable_nagle_algorithm = True
            timeout = read_timeout  # applied to the socket: each read of headers and body

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s " + format, self.address_string(), *args)

            def _serve(self) -> None:
                outer._serve(self)

            def __getattr__(self, name: str) -> Any:
                # every method (TRACE, PROPFIND, ...) goes to the handler, which answers JSON
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

        self.handler = handler
        # one request at a time, as in one Lambda execution environment: Powertools keeps the
        # current request on the resolver (class attributes), so concurrent calls would mix
        # one request's headers and body into another's
        self._invocation = threading.Lock()
        # requests being answered, so a stop lets them finish (and refuses what comes after)
        self._answering = 0
        self._stopping = False
        self._answered = threading.Condition()
        self.timeout_seconds = timeout_seconds
        self.httpd = (_SharedPortServer if reuse_port else ThreadingHTTPServer)((host, port), RequestHandler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(
            # shutdown() waits for the loop to look at its flag: a stop in 0.1 s, not 0.5 s
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="api-server",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting; answer the requests already being handled (within the function's
        timeout) and refuse with 503 any that arrive on open connections meanwhile."""
        self.httpd.shutdown()
        self.httpd.server_close()
        with self._answered:
            self._stopping = True
            self._answered.wait_for(lambda: self._answering == 0, timeout=self.timeout_seconds)

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        with self._answered:
            stopping = self._stopping
            if not stopping:
                self._answering += 1
        if stopping:
            self._refuse(request, 503, "The local API is stopping")
            return
        try:
            self._answer(request)
        finally:
            with self._answered:
                self._answering -= 1
                self._answered.notify_all()

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        declared = request.headers.get("Content-Length")
        if request.headers.get("Transfer-Encoding"):
            self._refuse(request, 411, "Transfer-Encoding is not supported; send Content-Length")
            return
        if declared is not None and not declared.strip().isdigit():
            self._refuse(request, 400, "Invalid Content-Length")
            return
        length = int(declared or 0)
        if length > MAX_REQUEST_BYTES:
            self._reply(request, 413, {"Content-Type": "application/json"}, b'{"error":"Request too large"}')
            request.close_connection = True
            return
        try:
            body = request.rfile.read(length) if length else b""
        except TimeoutError:
            request.close_connection = True
            return
        if len(body) < length:  # the client closed before sending what it announced
            request.close_connection = True
            return
        event = to_proxy_event(
            request.command, request.path, list(request.headers.items()), body, request.client_address[0]
        )
        try:
            with self._invocation:
                result = self.handler(event, LambdaContext("ingest", self.timeout_seconds))
        except Exception:
            log.exception("ingest handler raised")
            # What API Gateway answers when the integration fails.
            self._reply(
                request, 502, {"Content-Type": "application/json"}, b'{"message": "Internal server error"}'
            )
            return
        headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        raw = result.get("body") or ""
        payload = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode("utf-8")
        self._reply(request, int(result.get("statusCode", 200)), headers, payload)

    def _refuse(self, request: BaseHTTPRequestHandler, status: int, message: str) -> None:
        body = ('{"error":"' + message + '"}').encode()
        self._reply(request, status, {"Content-Type": "application/json", "Connection": "close"}, body)
        request.close_connection = True

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)
