"""The SSRF guard: only public http(s) destinations. :func:`check_url` refuses a URL that is
not http(s) or has no host, before any connection; :func:`is_public_address` and the guarded
connections refuse a host that resolves to a non-public address, checked at connect time (no
DNS rebinding between check and use)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util import connection as urllib3_connection

from ..errors import WebhooksError

# IPv6 prefixes that carry an IPv4 address in their last 32 bits: the well-known and the
# local-use NAT64 prefixes (RFC 6052, 8215), IPv4-compatible (deprecated, ::a.b.c.d) and
# IPv4-translated (SIIT, ::ffff:0:a.b.c.d) addresses
_EMBEDDING_V4 = tuple(
    ipaddress.ip_network(n) for n in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)


class DestinationRefused(WebhooksError):
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
    """Refuse what no webhook URL may be, whatever the guard: a scheme other than http(s), no host.

    Credentials (``user:password@``) are not checked here: the management API refuses them
    when a URL is set (:func:`webhooks.partners.urls.url_problem`), and were one stored anyway,
    urllib3 sends only the path and query, so the userinfo never leaves the process.
    """
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
