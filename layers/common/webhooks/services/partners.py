"""Partners: create, read, update, delete, their subscriptions and signing secrets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.errors import DuplicateKeyError, PyMongoError

from ..config import Settings
from ..delivery.operational_events import ENDPOINT_SECRET_ROTATED_EVENT, publish_operational
from ..delivery.parked import ParkedDeliveries
from ..endpoints.model import first_endpoint_id
from ..errors import Conflict, InvalidInput
from ..observability import logger
from ..partners.model import NewPartner, Partner
from ..partners.portal_tokens import PortalTokens
from ..partners.store import PartnerStore
from ..partners.urls import url_problem
from ..queues import Queue
from ..store.delivery_log import DeliveryLog
from .answers import (
    ApiKeyRotated,
    CreatedPartner,
    PartnerDetail,
    PartnerList,
    SecretRotated,
    answer,
)
from .answers import PartnerView as PartnerAnswer
from .schemas import EventPatterns, KeyRotation, PartnerCreate, PartnerUpdate, Rotation

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PartnerView = dict[str, Any]  # Partner.public() plus its subscriptions: no key, no secret


class PartnerService:
    def __init__(
        self,
        settings: Settings,
        store: PartnerStore,
        parked: ParkedDeliveries | None,
        log: DeliveryLog | None = None,
        events_queue: Queue | None = None,
        portal_tokens: PortalTokens | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.parked = parked
        self.log = log
        self.events_queue = events_queue  # operational events (endpoint.secret.rotated)
        # revoked when the partner is deactivated or deleted: reactivating it (or an id
        # reused) must not bring back a console link handed out before
        self.portal_tokens = portal_tokens

    def view(self, partner: Partner) -> PartnerView:
        view = {**partner.public(), "events": self.store.subscriptions_of(partner.id)}
        if partner.problems:  # fields of the wrong type, read as absent: say so
            view["problems"] = list(partner.problems)
        return view

    def create(self, new: PartnerCreate) -> PartnerView:
        """The new partner with its API key and secret: the only time either is shown."""
        self._check_url(new.webhookUrl)
        try:
            created = self.store.create(new.name, new.webhookUrl, new.events)
        except DuplicateKeyError:
            raise Conflict("A partner with that API key exists") from None
        optional = (new.headers, new.timeoutMs, new.rateLimit, new.publishScopes, new.receiveScopes)
        if any(v is not None for v in optional):
            try:
                partner = self.store.update(
                    created.partner.id,
                    headers=new.headers,
                    timeout_ms=new.timeoutMs,
                    rate_limit=new.rateLimit,
                    publish_scopes=new.publishScopes,
                    receive_scopes=new.receiveScopes,
                )
            except PyMongoError:  # the caller never sees this key: the partner must not stay
                self.store.remove_unannounced(created.partner.id)
                raise
            created = NewPartner(partner, created.api_key, created.secret_key, created.events)
        logger.info("partner created", extra={"partner_id": created.partner.id})
        view = {**self.view(created.partner), "apiKey": created.api_key, "secretKey": created.secret_key}
        return answer(CreatedPartner, view)

    def all(self) -> dict[str, Any]:
        """``partners``: every readable partner; ``skipped``: the documents with fields of
        the wrong type (a legacy document), each with its problems, left out rather than
        failing the whole list (each stays readable, deactivatable and deletable by id)."""
        readable, skipped = readable_partners(self.store.all())
        return answer(PartnerList, {"partners": [self.view(p) for p in readable], "skipped": skipped})

    def get(self, partner_id: str) -> PartnerView:
        view = self.view(self.store.get(partner_id))
        if self.parked is not None:
            view["endpoint"]["parkedDeliveries"] = self.parked.count(partner_id)
        if self.log is not None:
            # dead-lettered and not delivered since (what `recover` would resend), over the
            # log's retention: the console's count next to its Recover button
            view["deadLettered"] = len(self.log.failed_since(partner_id, EPOCH))
        return answer(PartnerDetail, view)

    def update(self, partner_id: str, change: PartnerUpdate) -> PartnerView:
        if change.webhookUrl:
            self._check_url(change.webhookUrl)
        # a null rateLimit / publishScopes / receiveScopes in the body removes it; an absent
        # one leaves it
        given = change.model_fields_set
        rate_limit = (change.rateLimit or 0) if "rateLimit" in given else None
        scopes = (change.publishScopes or []) if "publishScopes" in given else None
        receive = (change.receiveScopes or []) if "receiveScopes" in given else None
        partner = self.store.update(
            partner_id,
            name=change.name,
            webhook_url=change.webhookUrl,
            is_active=change.isActive,
            headers=change.headers,
            timeout_ms=change.timeoutMs,
            rate_limit=rate_limit,
            publish_scopes=scopes,
            receive_scopes=receive,
        )
        if change.isActive is False:
            self._revoke_portal_tokens(partner.id)
        return answer(PartnerAnswer, self.view(partner))

    def delete(self, partner_id: str) -> None:
        partner = self.store.get(partner_id)
        self.store.delete(partner_id)
        self._revoke_portal_tokens(partner.id)

    def _revoke_portal_tokens(self, partner_id: str) -> None:
        if self.portal_tokens is not None:
            revoked = self.portal_tokens.revoke_all(partner_id)
            if revoked:
                logger.info("portal tokens revoked", extra={"partner_id": partner_id, "revoked": revoked})

    def rotate_secret(self, partner_id: str, rotation: Rotation) -> dict[str, Any]:
        """A new secret (shown once); the old one keeps signing for the overlap."""
        hours = rotation.overlapHours
        if hours is None:
            hours = self.settings.secret_overlap_hours
        secret = self.store.rotate_secret(partner_id, timedelta(hours=hours))
        partner = self.store.get(partner_id)  # its id as dispatch spells it
        # it is the first endpoint's secret: announced as the endpoint route announces it,
        # never with the secret, only when the old one stops signing
        publish_operational(
            ENDPOINT_SECRET_ROTATED_EVENT,
            {
                "partnerId": partner.id,
                "endpointId": first_endpoint_id(partner.id),
                "previousSecretValidHours": hours,
            },
            self.events_queue,
        )
        return answer(
            SecretRotated, {"partnerId": partner_id, "secretKey": secret, "previousSecretValidHours": hours}
        )

    def rotate_api_key(self, partner_id: str, rotation: KeyRotation) -> dict[str, Any]:
        """A new API key (shown once); the old one works for the overlap (default: none)."""
        hours = rotation.overlapHours
        api_key = self.store.rotate_api_key(partner_id, timedelta(hours=hours))
        logger.info("partner API key rotated", extra={"partner_id": partner_id, "overlap_hours": hours})
        return answer(
            ApiKeyRotated, {"partnerId": partner_id, "apiKey": api_key, "previousKeyValidHours": hours}
        )

    def subscriptions(self, partner_id: str) -> list[str]:
        self.store.get(partner_id)  # NotFound for an unknown partner
        return self.store.subscriptions_of(partner_id)

    def subscribe(self, partner_id: str, patterns: EventPatterns) -> list[str]:
        self.store.get(partner_id)
        self.store.subscribe(partner_id, patterns.events)
        return self.store.subscriptions_of(partner_id)

    def unsubscribe(self, partner_id: str, patterns: EventPatterns) -> list[str]:
        self.store.get(partner_id)
        self.store.unsubscribe(partner_id, patterns.events)
        return self.store.subscriptions_of(partner_id)

    def _check_url(self, url: str) -> None:
        problem = url_problem(url, self.settings.allow_private_destinations)
        if problem:
            raise InvalidInput(f"webhookUrl: {problem}")


def readable_partners(partners: list[Partner]) -> tuple[list[Partner], list[dict[str, Any]]]:
    """Partners whose documents read cleanly, and the others as ``{partnerId, problems}``
    (logged: an operator runs ``webhooks migrate`` to see and fix them)."""
    readable = [p for p in partners if not p.problems]
    skipped = [{"partnerId": p.id, "problems": list(p.problems)} for p in partners if p.problems]
    if skipped:
        logger.warning(
            "partner documents skipped: fields of the wrong type (run webhooks migrate)",
            extra={"partner_ids": [s["partnerId"] for s in skipped]},
        )
    return readable, skipped
