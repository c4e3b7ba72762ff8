"""Endpoints: a partner's destinations, managed by the operator (admin key) or the partner
itself (its API key or a portal token). Every method is scoped to one partner: another
partner's endpoint is not found.

What a partner may subscribe its endpoints to itself is the operator's choice, as it was
before self-service existed: its grant is its ``receiveScopes`` if the operator set them,
else its first endpoint's subscriptions (which only the operator's routes widen). The
platform's own event types are always allowed: dispatch sends them only to the partner they
are about (see webhooks.partners.subscriptions.recipients)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from ..config import Settings
from ..delivery.operational_events import ENDPOINT_SECRET_ROTATED_EVENT, publish_operational
from ..delivery.parked import ParkedDeliveries
from ..endpoints.model import Endpoint
from ..endpoints.store import EndpointStore
from ..errors import Forbidden, InvalidInput
from ..observability import logger
from ..partners.subscriptions import is_reserved
from ..partners.urls import url_problem
from ..queues import Queue
from .answers import CreatedEndpoint, Deleted, EndpointList, EndpointSecretRotated, EndpointView, answer
from .schemas import EndpointCreate, EndpointUpdate, Rotation

SETTINGS = ("url", "filter", "headers", "retrySchedule", "rateLimitPerSecond", "timeoutMs", "description")


class EndpointService:
    def __init__(
        self,
        settings: Settings,
        store: EndpointStore,
        parked: ParkedDeliveries | None,
        events_queue: Queue | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.parked = parked
        self.events_queue = events_queue  # operational events (endpoint.secret.rotated)

    def view(self, endpoint: Endpoint, with_parked: bool = False) -> dict[str, Any]:
        """What the API shows (``with_parked``: and how many deliveries it has parked, one
        count query: reading one endpoint, not a list)."""
        parked = None
        if with_parked and self.parked is not None:
            parked = self.parked.count(endpoint.partner_id, endpoint.id)
        value = endpoint.public(parked)
        if endpoint.problems:
            value["problems"] = list(endpoint.problems)
        return value

    def list(self, partner_id: str) -> dict[str, Any]:
        return answer(EndpointList, {"endpoints": [self.view(e) for e in self.store.of_partner(partner_id)]})

    def get(self, partner_id: str, endpoint_id: str) -> dict[str, Any]:
        return answer(EndpointView, self.view(self.store.get(partner_id, endpoint_id), with_parked=True))

    def create(self, partner_id: str, new: EndpointCreate) -> dict[str, Any]:
        """The new endpoint with its signing secret: the only time it is shown."""
        self._check_url(new.url)
        settings = {name: getattr(new, name) for name in SETTINGS}
        endpoint, secret = self.store.create(partner_id, settings, new.events)
        logger.info("endpoint created", extra={"partner_id": partner_id, "endpoint_id": endpoint.id})
        return answer(CreatedEndpoint, {**self.view(endpoint), "secretKey": secret})

    def update(self, partner_id: str, endpoint_id: str, change: EndpointUpdate) -> dict[str, Any]:
        """Set what the body names; a null removes a setting (the default applies again)."""
        if change.url is not None:
            self._check_url(change.url)
        changes = {name: getattr(change, name) for name in SETTINGS if name in change.model_fields_set}
        endpoint = self.store.update(partner_id, endpoint_id, changes, change.events)
        logger.info("endpoint updated", extra={"partner_id": partner_id, "endpoint_id": endpoint_id})
        return answer(EndpointView, self.view(endpoint))

    def create_own(self, partner_id: str, new: EndpointCreate) -> dict[str, Any]:
        """The partner's own create: its events must be within its grant (403 otherwise)."""
        self._check_grant(partner_id, new.events)
        return self.create(partner_id, new)

    def update_own(self, partner_id: str, endpoint_id: str, change: EndpointUpdate) -> dict[str, Any]:
        """The partner's own update: events it adds must be within its grant (403 otherwise);
        those the endpoint has already stay allowed (a client PATCHes back what it read)."""
        if change.events is not None:
            current = self.store.get(partner_id, endpoint_id)  # another partner's: 404, not 403
            self._check_grant(partner_id, [e for e in change.events if e not in current.events])
        return self.update(partner_id, endpoint_id, change)

    def grant(self, partner_id: str) -> Sequence[str] | None:
        """What the partner may subscribe its endpoints to itself: its receiveScopes, set by
        the operator; None (unset): any event type, as publishScopes unset lets a key publish
        any (the platform's own types are always allowed: they only carry its own data)."""
        return self.store.partner_store.get(partner_id).receive_scopes

    def _check_grant(self, partner_id: str, events: Sequence[str]) -> None:
        grant = self.grant(partner_id)
        if grant is None:
            return
        outside = [
            p for p in dict.fromkeys(events) if not is_reserved(p) and not any(covers(g, p) for g in grant)
        ]
        if outside:
            raise Forbidden(
                f"events: {', '.join(outside)} not within what this partner may receive "
                f"({', '.join(grant) or 'nothing'}); the operator grants receive scopes "
                "(webhooks partners receive-scopes)"
            )

    def delete(self, partner_id: str, endpoint_id: str) -> dict[str, Any]:
        self.store.delete(partner_id, endpoint_id)
        logger.info("endpoint deleted", extra={"partner_id": partner_id, "endpoint_id": endpoint_id})
        return answer(Deleted, {"deleted": endpoint_id})

    def rotate_secret(self, partner_id: str, endpoint_id: str, rotation: Rotation) -> dict[str, Any]:
        """A new secret (shown once); the old one keeps signing for the overlap."""
        hours = rotation.overlapHours
        if hours is None:
            hours = self.settings.secret_overlap_hours
        owner = self.store.get(partner_id, endpoint_id).partner_id  # as dispatch spells it
        secret = self.store.rotate_secret(owner, endpoint_id, timedelta(hours=hours))
        logger.info("endpoint secret rotated", extra={"partner_id": partner_id, "endpoint_id": endpoint_id})
        # the partner's other systems learn of it; never the secret, only when the old one stops
        publish_operational(
            ENDPOINT_SECRET_ROTATED_EVENT,
            {"partnerId": owner, "endpointId": endpoint_id, "previousSecretValidHours": hours},
            self.events_queue,
        )
        return answer(
            EndpointSecretRotated,
            {"endpointId": endpoint_id, "secretKey": secret, "previousSecretValidHours": hours},
        )

    def _check_url(self, url: str) -> None:
        problem = url_problem(url, self.settings.allow_private_destinations)
        if problem:
            raise InvalidInput(f"url: {problem}")


def covers(grant: str, pattern: str) -> bool:
    """Whether subscribing to ``pattern`` brings nothing beyond ``grant``: the same pattern,
    ``*`` over any type not reserved, or ``x.*`` over ``x.`` and anything below it
    (``x.y``, ``x.y.*``). Only ``*`` covers ``*``."""
    if grant == pattern:
        return True
    if grant == "*":
        return not is_reserved(pattern)
    return grant.endswith(".*") and pattern.startswith(grant[:-1])
