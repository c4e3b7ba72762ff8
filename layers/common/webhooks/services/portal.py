"""Portal tokens: the operator issues a partner a short-lived link to the console; the
token in it signs the browser in as that partner, on the partner's own routes only.

The link carries the token in its fragment (``<api>/console#portal=<token>``): browsers
never send a fragment to a server, so it reaches no access log, proxy or Referer. The
console reads it, keeps it in sessionStorage and removes it from the address bar.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo.database import Database

from ..errors import Conflict, Unauthenticated
from ..observability import logger
from ..partners.credentials import _refused, _source
from ..partners.model import Partner, PartnerNotFound
from ..partners.portal_tokens import PortalTokens
from ..partners.store import PartnerStore
from ..partners.throttle import FailureThrottle
from .answers import PortalToken, PortalTokensRevoked, answer
from .schemas import PortalTokenRequest

INVALID = "Invalid or expired portal token"
# Failed tokens are counted per source under their own kind, not in the API keys' budget:
# a run of wrong API keys from an address (a misconfigured producer behind the same NAT)
# must never turn a token's contract answer, 401, into a 429. The limit
# (PORTAL_TOKEN_MAX_FAILURES, 100 a minute) is higher than the keys' because a console open
# in several tabs retries one expired token on each of them; it only slows guessing, which a
# token's 32 random bytes already make hopeless.
PORTAL_TOKEN_FAILURE_KIND = "portalToken"


def portal_token_failures(db: Database[Any], limit: int) -> FailureThrottle:
    """The failed-token count the API uses: its own kind and limit, per source."""
    return FailureThrottle(db, PORTAL_TOKEN_FAILURE_KIND, limit=limit)


def portal_url(api_base: str, token: str) -> str:
    """The console at ``api_base`` (the API's origin and stage prefix) signed in by ``token``."""
    return f"{api_base.rstrip('/')}/console#portal={token}"


class PortalService:
    def __init__(self, store: PartnerStore, tokens: PortalTokens, failures: FailureThrottle | None) -> None:
        self.store = store
        self.tokens = tokens
        # failed tokens' own count per source (PORTAL_TOKEN_FAILURE_KIND), never the API keys'
        self.failures = failures

    def issue(self, partner_id: str, request: PortalTokenRequest, api_base: str) -> dict[str, Any]:
        """A token (shown once) and the console link it signs in; 404 for an unknown partner."""
        partner = self.store.get(partner_id)
        if not partner.is_active:  # its token would be refused at once: say so instead
            raise Conflict(f"Partner {partner.id} is inactive; activate it first")
        issued = self.tokens.issue(partner.id, timedelta(seconds=request.ttlSeconds))
        # deactivated (and its tokens revoked) or deleted between the check above and the
        # insert: this token must not work again if the partner is reactivated
        try:
            still_active = self.store.get(partner.id).is_active
        except PartnerNotFound:
            self.tokens.revoke_all(partner.id)
            raise
        if not still_active:
            self.tokens.revoke_all(partner.id)
            raise Conflict(f"Partner {partner.id} is inactive; activate it first")
        logger.info(
            "portal token issued",
            extra={"partner_id": partner.id, "expires_at": issued.expires_at.isoformat()},
        )
        return answer(
            PortalToken,
            {
                "token": issued.token,
                "expiresAt": issued.expires_at.isoformat(),
                "url": portal_url(api_base, issued.token),
            },
        )

    def revoke(self, partner_id: str) -> dict[str, Any]:
        """Revoke every token of the partner at once; 404 for an unknown partner."""
        partner = self.store.get(partner_id)
        revoked = self.tokens.revoke_all(partner.id)
        logger.info("portal tokens revoked", extra={"partner_id": partner.id, "revoked": revoked})
        return answer(PortalTokensRevoked, {"revoked": revoked})

    def partner(self, token: str, source: str = "unknown") -> Partner:
        """The active partner ``token`` signs in; 401 (429 past the failed-token limit) for an
        expired, revoked or made-up token, or one whose partner is inactive or deleted."""
        partner_id = self.tokens.partner_id(token) if token else None
        self.store.sync()  # a partner deactivated or deleted elsewhere is refused now
        partner = self.store.get_cached(partner_id) if partner_id else None
        if partner is None or not partner.is_active:
            if self.failures is None:
                raise Unauthenticated(INVALID)
            raise _refused(self.failures, _source(source), "portal token", INVALID)
        return partner
