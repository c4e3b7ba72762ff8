"""Who is calling: the operator's admin key and partners' API keys.

Failed keys are counted per source address in MongoDB (webhooks.throttle), one count for
every API worker: past the limit a source's wrong keys are answered 429 with Retry-After
instead of 401. The right key is still accepted from a throttled source, so nobody who
shares an address with the operator or a producer (a NAT, a laptop running
`webhooks local`) can lock them out by failing on purpose. The limit therefore slows
nobody who ignores the 429s; what stops guessing is the keys' entropy (32 random bytes),
and what tells the operator is the log line of every refused key with its source.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from pymongo.database import Database

from ..config import Settings, parse_key_hashes
from ..errors import Forbidden, Throttled, Unauthenticated, Unavailable
from ..observability import logger
from .model import Partner
from .store import PartnerStore
from .throttle import FailureThrottle

# how long a value read from SSM is used before it is read again: a rotation of the
# admin key's hash takes effect within this, without a redeploy
ADMIN_HASH_MAX_AGE_SECONDS = 60
ADMIN_MISCONFIGURED = "The admin API is misconfigured; see the service's logs"
_SOURCE = re.compile(r"^[0-9A-Za-z.:_-]{1,64}$")


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _source(source: str) -> str:
    # the address API Gateway reports; anything else is one bucket, not a key of its own
    return source if _SOURCE.match(source) else "unknown"


def _refused(failures: FailureThrottle, source: str, what: str, error: str) -> Exception:
    """Count the failure and return the refusal to raise: 429 past the limit, else 401."""
    wait = failures.failed(source)
    logger.warning(f"{what} refused", extra={"source_ip": source, "throttled": wait > 0})
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        return Throttled(f"Too many failed {what} attempts; retry in {seconds} s", seconds)
    return Unauthenticated(error)


class AdminCredential:
    """The admin key, compared by its SHA-256 in constant time against every accepted hash.

    The hashes come from the SSM parameter ADMIN_API_KEY_HASH_PARAMETER names (read
    decrypted with Powertools Parameters, cached ``ADMIN_HASH_MAX_AGE_SECONDS``) when it
    is set, else from ADMIN_API_KEY_HASH / ADMIN_API_KEY. Several hashes are accepted at
    once, so a key is rotated with an overlap: "new,old", later "new".
    """

    def __init__(self, settings: Settings, db: Database[Any], ssm: SSMProvider | None = None) -> None:
        self.fixed = settings.admin_key_hashes
        self.parameter = settings.admin_api_key_hash_parameter
        self.ssm = ssm
        self.failures = FailureThrottle(db, "admin", limit=settings.admin_auth_max_failures)

    @property
    def enabled(self) -> bool:
        return bool(self.parameter or self.fixed)

    def accepted_hashes(self) -> tuple[str, ...]:
        if not self.parameter:
            return self.fixed
        if self.ssm is None:
            self.ssm = SSMProvider()
        try:
            value = self.ssm.get(self.parameter, max_age=ADMIN_HASH_MAX_AGE_SECONDS, decrypt=True)
        except GetParameterError as exc:
            cause = type(exc.__cause__ or exc).__name__
            logger.error(
                "admin key hash parameter unreadable", extra={"parameter": self.parameter, "error": cause}
            )
            raise Unavailable("The admin key cannot be checked now; retry later") from None
        try:
            return parse_key_hashes(str(value))
        except ValueError as exc:  # the message says what is wrong, never the value
            logger.error(
                "admin key hash parameter malformed", extra={"parameter": self.parameter, "problem": str(exc)}
            )
            raise Unavailable(ADMIN_MISCONFIGURED) from None

    def check(self, admin_key: str | None, source: str = "unknown") -> None:
        if not self.enabled:
            raise Forbidden(
                "The admin API is not enabled (set ADMIN_API_KEY_HASH_PARAMETER or ADMIN_API_KEY_HASH)"
            )
        if not admin_key:  # not counted: a missing header is a mistake, not a guess
            raise Unauthenticated("Admin key is required (X-Admin-Key)")
        given = _sha256(admin_key)
        # every hash compared, each in constant time: which one matched is not timed either
        matches = [hmac.compare_digest(given, expected) for expected in self.accepted_hashes()]
        if not any(matches):
            raise _refused(self.failures, _source(source), "admin key", "Invalid admin key")


class PartnerCredential:
    """A partner's API key: the partner it belongs to, if that partner is active."""

    def __init__(self, store: PartnerStore, failures: FailureThrottle | None = None) -> None:
        self.store = store
        self.failures = failures

    def partner(self, api_key: str | None, source: str = "unknown") -> Partner:
        if not api_key:
            raise Unauthenticated("API key is required")
        self.store.sync()  # a key deactivated, deleted or rotated elsewhere stops working now
        partner = self.store.find_by_api_key(api_key)
        if partner is None:
            error = "Invalid API key or inactive partner"
            if self.failures is None:
                raise Unauthenticated(error)
            raise _refused(self.failures, _source(source), "API key", error)
        return partner
