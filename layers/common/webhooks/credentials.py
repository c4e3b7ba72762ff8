"""Who is calling: the operator's admin key and partners' API keys."""

from __future__ import annotations

import hashlib
import hmac
import math

from .config import Settings
from .errors import Forbidden, Throttled, Unauthenticated
from .observability import logger
from .partners import Partner, PartnerStore
from .throttle import FailureThrottle


class AdminCredential:
    """The admin key, compared by its SHA-256 in constant time; failures throttled per source."""

    def __init__(self, settings: Settings) -> None:
        self.expected = settings.admin_key_hash
        self.failures = FailureThrottle(limit=settings.admin_auth_max_failures)

    def check(self, admin_key: str | None, source: str = "unknown") -> None:
        if not self.expected:
            raise Forbidden("The admin API is not enabled (set ADMIN_API_KEY_HASH)")
        if not admin_key:  # before the throttle: a missing header is a mistake, not a guess
            raise Unauthenticated("Admin key is required (X-Admin-Key)")
        wait = self.failures.blocked_for(source)
        if wait > 0:
            logger.warning("admin key attempts throttled", extra={"source_ip": source})
            seconds = math.ceil(wait)
            raise Throttled(f"Too many failed admin key attempts; retry in {seconds} s", seconds)
        given = hashlib.sha256(admin_key.encode("utf-8", "surrogatepass")).hexdigest()
        if not hmac.compare_digest(given, self.expected):
            self.failures.failed(source)
            logger.warning("admin key refused", extra={"source_ip": source})
            raise Unauthenticated("Invalid admin key")


class PartnerCredential:
    """A partner's API key: the partner it belongs to, if that partner is active."""

    def __init__(self, store: PartnerStore) -> None:
        self.store = store

    def partner(self, api_key: str | None) -> Partner:
        if not api_key:
            raise Unauthenticated("API key is required")
        self.store.sync()  # a key deactivated or deleted elsewhere stops working now
        partner = self.store.find_by_api_key(api_key)
        if partner is None:
            raise Unauthenticated("Invalid API key or inactive partner")
        return partner
