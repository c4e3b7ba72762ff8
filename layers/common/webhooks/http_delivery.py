"""The HTTP client that POSTs webhooks: pooled, time-boxed, no redirects, SSRF-guarded.

The guard lives in the connection itself: every new connection resolves the host,
drops addresses that are not public, and connects to an address it just checked, so a
DNS answer cannot change between the check and the connect (no rebinding window).
TLS still verifies the certificate against the host name.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util import connection as urllib3_connection

USER_AGENT = "recart-webhooks/1.0"
# IPv6 prefixes that carry an IPv4 address in their last 32 bits: the well-known and the
# local-use NAT64 prefixes (RFC 6052, 8215), IPv4-compatible (deprecated, ::a.b.c.d) and
# IPv4-translated (SIIT, ::ffff:0:a.b.c.d) addresses
_EMBEDDING_V4 = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)


class DestinationRefused(Exception):
    """The webhook URL is not a public http(s) destination."""


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local (cloud metadata), multicast, reserved, etc."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and any(ip in network for network in _EMBEDDING_V4):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(str(embedded)):
            return False
    return ip.is_global and not ip.is_multicast


def check_url(url: str) -> None:
    """Refuse what no webhook URL may be, whatever the guard: non-http(s), no host, credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused(f"scheme {parts.scheme or '(none)'!r} is not http or https")
    if not parts.hostname:
        raise DestinationRefused("URL has no host")


class _GuardedConnectionMixin:
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any

    def _new_conn(self) -> socket.socket:
        host = self.host.strip("[]")
        try:
            infos = socket.getaddrinfo(host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise DestinationRefused(f"cannot resolve {host}: {exc.strerror}") from None
        allowed = [info[4][0] for info in infos if is_public_address(str(info[4][0]))]
        if not allowed:
            raise DestinationRefused(f"{host} resolves to a non-public address")
        last_error: OSError | None = None
        for address in dict.fromkeys(allowed):
            try:
                return urllib3_connection.create_connection(
                    (str(address), self.port),
                    self.timeout,
                    source_address=self.source_address,
                    socket_options=self.socket_options,
                )
            except OSError as exc:
                last_error = exc
        assert last_error is not None
        raise last_error


class _GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class _GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _Deadlines:
    """One daemon thread that fires expired watchdogs (a timer thread per POST costs too much)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, _Watchdog]] = []
        self._counter = 0
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, deadline: float, watchdog: _Watchdog) -> None:
        with self._cv:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-deadlines", daemon=True)
                self._thread.start()
            self._counter += 1
            heapq.heappush(self._heap, (deadline, self._counter, watchdog))
            self._cv.notify()

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                deadline, _, watchdog = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                heapq.heappop(self._heap)
            watchdog.fire()


_deadlines = _Deadlines()


class _Watchdog:
    """Cuts one POST at its deadline, whatever the receiver does.

    Socket timeouts bound each read, not the whole exchange: a receiver that drips a byte
    of headers every few seconds would never time out. At the deadline this shuts the
    connection's socket down, so a blocked read returns at once (plain or TLS).
    """

    current = threading.local()

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self._done = False
        self._conn: Any = None
        self._lock = threading.Lock()
        self._deadline = time.monotonic() + seconds

    def __enter__(self) -> _Watchdog:
        _Watchdog.current.value = self
        _deadlines.add(self._deadline, self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
            self._conn = None
        _Watchdog.current.value = None

    def watch(self, conn: Any) -> None:
        with self._lock:
            self._conn = conn

    def release(self) -> None:
        """The exchange is over: a late deadline must not touch a connection back in the pool."""
        with self._lock:
            self._conn = None

    def fire(self) -> None:
        with self._lock:
            if self._done or self._conn is None:
                return
            self.fired = True
            sock = getattr(self._conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _WatchedPoolMixin:
    def _make_request(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        watchdog = getattr(_Watchdog.current, "value", None)
        if watchdog is not None:
            watchdog.watch(conn)
        return super()._make_request(conn, *args, **kwargs)  # type: ignore[misc]


class _HTTPPool(_WatchedPoolMixin, HTTPConnectionPool):
    pass


class _HTTPSPool(_WatchedPoolMixin, HTTPSConnectionPool):
    pass


class _GuardedHTTPPool(_WatchedPoolMixin, HTTPConnectionPool):
    ConnectionCls = _GuardedHTTPConnection


class _GuardedHTTPSPool(_WatchedPoolMixin, HTTPSConnectionPool):
    ConnectionCls = _GuardedHTTPSConnection


class _WebhookAdapter(HTTPAdapter):
    def __init__(self, guard: bool, **kwargs: Any) -> None:
        self.guard = guard
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        pools = (_GuardedHTTPPool, _GuardedHTTPSPool) if self.guard else (_HTTPPool, _HTTPSPool)
        self.poolmanager.pool_classes_by_scheme = {"http": pools[0], "https": pools[1]}


def make_session(pool_size: int, allow_private: bool) -> requests.Session:
    """A session for one process: pooled keep-alive connections, no proxies from the env."""
    session = requests.Session()
    session.trust_env = False  # an HTTP(S)_PROXY in the environment must not see webhooks
    adapter = _WebhookAdapter(
        guard=not allow_private, pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0
    )
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


@dataclass(frozen=True)
class HttpResult:
    status: int | None
    latency_ms: float
    error: str | None = None
    error_class: str | None = None
    retry_after: str | None = None
    body_excerpt: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
    body_limit: int,
) -> HttpResult:
    """POST once; never raises for network trouble, returns what happened instead."""
    started = time.perf_counter()
    deadline = started + timeout_seconds
    with _Watchdog(timeout_seconds) as watchdog:
        result = _post_once(session, url, body, headers, timeout_seconds, body_limit, started, deadline)
    if watchdog.fired and result.status is None:  # cut before any status line arrived
        return HttpResult(None, result.latency_ms, f"timed out after {timeout_seconds:g}s", "Timeout")
    return result


def _post_once(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout_seconds: float,
    body_limit: int,
    started: float,
    deadline: float,
) -> HttpResult:
    def elapsed() -> float:
        return (time.perf_counter() - started) * 1000

    try:
        check_url(url)
        response = session.post(
            url,
            data=body,
            headers=headers,
            timeout=(timeout_seconds, timeout_seconds),
            allow_redirects=False,
            stream=True,
        )
    except DestinationRefused as exc:
        return HttpResult(None, elapsed(), f"destination refused: {exc}", "DestinationRefused")
    except requests.Timeout:
        return HttpResult(None, elapsed(), f"timed out after {timeout_seconds:g}s", "Timeout")
    except requests.exceptions.InvalidHeader as exc:
        # its message quotes the header's value, which may be a partner's credential
        return HttpResult(None, elapsed(), "request not sent: invalid header value", type(exc).__name__)
    except requests.RequestException as exc:
        refused = _find_cause(exc, DestinationRefused)
        if refused is not None:
            return HttpResult(None, elapsed(), f"destination refused: {refused}", "DestinationRefused")
        return HttpResult(None, elapsed(), _short(exc), type(exc).__name__)
    except (UnicodeError, ValueError, TypeError) as exc:
        # e.g. a header value http.client cannot encode; the message may quote the value
        return HttpResult(None, elapsed(), f"request not sent: {type(exc).__name__}", type(exc).__name__)
    with response:
        excerpt, complete = _read_capped(response, body_limit, deadline)
        watchdog = getattr(_Watchdog.current, "value", None)
        if complete and watchdog is not None:
            watchdog.release()
        if complete and not (watchdog and watchdog.fired):
            response.raw.release_conn()  # keep the connection for the next delivery
        else:
            response.raw.close()  # unread body left on the socket: do not reuse it
    return HttpResult(
        response.status_code,
        elapsed(),
        None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}",
        None,
        response.headers.get("Retry-After"),
        excerpt,
    )


def _read_capped(response: requests.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes before ``deadline``; say whether the body ended."""
    chunks: list[bytes] = []
    size = 0
    try:
        while time.perf_counter() < deadline:
            chunk = response.raw.read(min(16_384, limit - size + 1), decode_content=False)
            if not chunk:
                return b"".join(chunks), True
            size += len(chunk)
            if size > limit:
                return b"".join(chunks)[:limit], False
            chunks.append(chunk)
    except Exception:  # noqa: BLE001 - a broken body does not change the status we already have
        pass
    return b"".join(chunks), False


def _find_cause(exc: BaseException, kind: type[Exception]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
        if current is None and exc.args and isinstance(exc.args[0], BaseException):
            current = exc.args[0]
    return None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
