"""Portal tokens: short-lived bearer credentials that sign a partner in to the console
without its API key ever reaching a browser.

A token is ``wpt_`` and 32 random bytes (URL-safe base64), shown once when issued. Only its
SHA-256 is stored, in ``portalTokens`` {tokenHash (unique), partnerId, expiresAt (TTL),
createdAt}: a copy of the database signs nobody in. A token names one partner and nothing
else; it expires at ``expiresAt`` (checked on every use, so the TTL monitor's minute or so
of lag never extends it) and is revoked by deleting its document: all of a partner's on
request, and when the partner is deactivated or deleted (services/partners.py), so
reactivating a partner brings back no link handed out before.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

COLLECTION = "portalTokens"
PREFIX = "wpt_"  # recognisable in a leaked-secret scan, and never mistaken for an API key (pk_)
MAX_TOKEN_CHARS = 200  # longer than any token issued: not worth hashing or looking up


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    partner_id: str
    expires_at: datetime


class PortalTokens:
    def __init__(self, db: Database[Any], clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.tokens = db[COLLECTION]
        self._clock = clock
        self._indexed = False

    def ensure_indexes(self) -> None:
        """Idempotent; also run by ``store.indexes`` before anything serves."""
        self.tokens.create_index("tokenHash", unique=True)
        self.tokens.create_index("expiresAt", expireAfterSeconds=0)
        self.tokens.create_index([("partnerId", ASCENDING)])
        self._indexed = True

    def issue(self, partner_id: str, ttl: timedelta) -> IssuedToken:
        if not self._indexed:
            self.ensure_indexes()
        token = PREFIX + secrets.token_urlsafe(32)
        now = self._clock()
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # as MongoDB keeps it
        expires_at = now + ttl
        self.tokens.insert_one(
            {
                "tokenHash": hash_token(token),
                "partnerId": partner_id,
                "expiresAt": expires_at,
                "createdAt": now,
            }
        )
        return IssuedToken(token, partner_id, expires_at)

    def partner_id(self, token: str) -> str | None:
        """The partner an unexpired, unrevoked ``token`` was issued for; None for any other."""
        if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_CHARS:
            return None
        doc = self.tokens.find_one(
            {"tokenHash": hash_token(token), "expiresAt": {"$gt": self._clock()}}, {"partnerId": 1}
        )
        found = doc.get("partnerId") if doc else None
        return found if isinstance(found, str) else None

    def revoke_all(self, partner_id: str) -> int:
        """Revoke every token of the partner (expired ones included); how many were removed."""
        return int(self.tokens.delete_many({"partnerId": partner_id}).deleted_count)
