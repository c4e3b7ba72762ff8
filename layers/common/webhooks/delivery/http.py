"""The HTTP client that POSTs webhooks: pooled, time-boxed, no redirects, SSRF-guarded.

The guard lives in the connection itself: every new connection resolves the host,
drops addresses that are not public, and connects to an address it just checked, so a
DNS answer cannot change between the check and the connect (no rebinding window).
TLS still verifies the certificate against the host name.
"""

from __future__ import annotations

import contextlib
import heapq
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from urllib3 import BaseHTTPResponse, PoolManager, Timeout
from urllib3 import exceptions as urllib3_exceptions
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from .ssrf import (
    DestinationRefused,
    _GuardedHTTPConnection,
    _GuardedHTTPSConnection,
    check_url,
)

USER_AGENT = "recart-webhooks/1.0"


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
            if self._heap[0][2] is watchdog:  # sooner than what the thread sleeps until
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


class WebhookClient(PoolManager):
    """A client for one process: urllib3's pool manager (keep-alive connections per
    destination) with the guarded (or, for local use, plain) watched pools.

    The deliver path talks to urllib3, the library requests is built on, directly:
    requests' session layer (preparing the request, merging settings, cookies, hooks)
    was half the CPU of a POST (docs/PERFORMANCE.md). urllib3 reads no proxy settings
    from the environment, so an HTTP(S)_PROXY never sees a webhook.
    """

    def __init__(self, pool_size: int, allow_private: bool) -> None:
        # block=False: a burst past pool_size opens an extra connection instead of waiting
        super().__init__(num_pools=64, maxsize=pool_size, block=False, retries=False)
        pools = (_HTTPPool, _HTTPSPool) if allow_private else (_GuardedHTTPPool, _GuardedHTTPSPool)
        self.pool_classes_by_scheme = {"http": pools[0], "https": pools[1]}


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
    client: PoolManager,
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
        result = _post_once(client, url, body, headers, timeout_seconds, body_limit, started, deadline)
    if watchdog.fired and result.status is None:  # cut before any status line arrived
        return HttpResult(None, result.latency_ms, f"timed out after {timeout_seconds:g}s", "Timeout")
    return result


def _post_once(
    client: PoolManager,
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
        response = client.urlopen(
            "POST",
            url,
            body=body,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=Timeout(connect=timeout_seconds, read=timeout_seconds),
            retries=False,
            redirect=False,
            preload_content=False,
            decode_content=False,
        )
    except DestinationRefused as exc:
        return HttpResult(None, elapsed(), f"destination refused: {exc}", "DestinationRefused")
    except urllib3_exceptions.NewConnectionError as exc:  # a subclass of the timeout error
        return HttpResult(None, elapsed(), _short(exc), type(exc).__name__)
    except urllib3_exceptions.TimeoutError:
        return HttpResult(None, elapsed(), f"timed out after {timeout_seconds:g}s", "Timeout")
    except urllib3_exceptions.HTTPError as exc:
        refused = _find_cause(exc, DestinationRefused)
        if refused is not None:
            return HttpResult(None, elapsed(), f"destination refused: {refused}", "DestinationRefused")
        return HttpResult(None, elapsed(), _short(exc), type(exc).__name__)
    except (UnicodeError, ValueError, TypeError) as exc:
        # e.g. a header value http.client refuses (CR/LF) or cannot encode: the message
        # would quote the value, which may be a partner's credential
        return HttpResult(None, elapsed(), f"request not sent: {type(exc).__name__}", type(exc).__name__)
    except OSError as exc:  # a socket error urllib3 did not wrap
        return HttpResult(None, elapsed(), _short(exc), type(exc).__name__)
    try:
        excerpt, complete = _read_capped(response, body_limit, deadline)
        watchdog = getattr(_Watchdog.current, "value", None)
        if complete and watchdog is not None:
            watchdog.release()
        if complete and not (watchdog and watchdog.fired):
            response.release_conn()  # keep the connection for the next delivery
        else:
            response.close()  # unread body left on the socket: do not reuse it
            response.release_conn()
    except Exception:  # noqa: BLE001 - the status line already arrived; it is the outcome
        response.close()
        excerpt = b""
    status = response.status
    return HttpResult(
        status,
        elapsed(),
        None if 200 <= status < 300 else f"HTTP {status}",
        None,
        response.headers.get("Retry-After"),
        excerpt,
    )


def _read_capped(response: BaseHTTPResponse, limit: int, deadline: float) -> tuple[bytes, bool]:
    """Read at most ``limit`` bytes before ``deadline``; say whether the body ended."""
    chunks: list[bytes] = []
    size = 0
    try:
        while time.perf_counter() < deadline:
            chunk = response.read(min(16_384, limit - size + 1), decode_content=False)
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
