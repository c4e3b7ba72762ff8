"""Webhook URLs as the management API accepts and shows them.

A URL may not carry credentials (``user:password@``): they would be echoed by every
listing and logged by proxies; custom headers carry credentials instead. Listings show
the query string masked, since tokens often travel there; a URL still holding that mask
(sent back as it was read) is refused, so it never replaces the real one. With private destinations
disallowed, a URL whose host is or resolves to a loopback, private, link-local or
metadata address is refused when it is set, not only at delivery.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

from ..delivery.ssrf import is_public_address

MASK = "***"  # what masked_url shows in place of credentials and a query string
MASKED = "looks masked as the API shows it (***); send the real URL"


def masked_url(url: str) -> str:
    """``url`` with its userinfo and query string replaced by ``***``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return MASK
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    if parts.username or parts.password:
        netloc = f"{MASK}@" + netloc
    return urlunsplit((parts.scheme, netloc, parts.path, MASK if parts.query else "", ""))


def url_problem(url: str, allow_private: bool) -> str | None:
    """Why ``url`` cannot be a webhook URL (None: it can)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http(s) URL with a host"
    # a URL copied back from a GET answer (an edit form, a PATCH of what was read) would
    # replace the real query or credentials with the mask and break every delivery
    userinfo = parts.netloc.rpartition("@")[0]
    if MASK in userinfo or MASK in parts.query:
        return MASKED
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials (user:password@); send them as a custom header"
    if allow_private:
        return None
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            found = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return None  # not resolvable now: the delivery-time guard still applies
        addresses = [str(info[4][0]) for info in found]
    if not all(is_public_address(a) for a in addresses):
        return "must not point at a loopback, private, link-local or metadata address"
    return None
