"""Partners (operator): create, read, update, delete, subscriptions, signing secret."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from ..services.answers import (
    ApiKeyRotated,
    CreatedPartner,
    Deleted,
    PartnerDetail,
    PartnerList,
    PartnerView,
    SecretRotated,
    Subscriptions,
    answer,
)
from ..services.schemas import EventPatterns, KeyRotation, PartnerCreate, PartnerUpdate, Rotation
from .context import admin_operation, described, ok, services
from .replies import json_response

router = Router()  # under /api/v1/admin/partners
admin = admin_operation(router, "partners")


@admin("POST", "", 400, 409, responses={201: described("Created", CreatedPartner)})
def create_partner(partner: PartnerCreate) -> Response[Any]:
    """Create a partner (returns its API key and secret once)"""
    return json_response(201, services(router).partners.create(partner))


@admin("GET", "", responses=ok(PartnerList))
def list_partners() -> dict[str, Any]:
    """List partners (`skipped`: stored documents with fields of the wrong type, by id)"""
    return services(router).partners.all()


@admin("GET", "/<partner_id>", 404, responses=ok(PartnerDetail))
def get_partner(partner_id: str) -> dict[str, Any]:
    """Get a partner"""
    return services(router).partners.get(partner_id)


@admin("PATCH", "/<partner_id>", 400, 404, responses=ok(PartnerView))
def update_partner(partner_id: str, change: PartnerUpdate) -> dict[str, Any]:
    """Update name, URL, active state, headers, timeout, rate limit or publish scopes"""
    return services(router).partners.update(partner_id, change)


@admin("DELETE", "/<partner_id>", 404, responses=ok(Deleted))
def delete_partner(partner_id: str) -> dict[str, Any]:
    """Delete a partner and its subscriptions"""
    services(router).partners.delete(partner_id)
    return answer(Deleted, {"deleted": partner_id})


@admin("POST", "/<partner_id>/rotate-secret", 400, 404, responses=ok(SecretRotated))
def rotate_secret(partner_id: str, rotation: Annotated[Rotation | None, Body()] = None) -> dict[str, Any]:
    """Rotate the signing secret (the old one signs too, for the overlap)"""
    return services(router).partners.rotate_secret(partner_id, rotation or Rotation.model_validate({}))


@admin("POST", "/<partner_id>/rotate-api-key", 400, 404, responses=ok(ApiKeyRotated))
def rotate_api_key(partner_id: str, rotation: Annotated[KeyRotation | None, Body()] = None) -> dict[str, Any]:
    """Rotate the API key (the new one shown once; the old one refused at once or after overlapHours)"""
    return services(router).partners.rotate_api_key(partner_id, rotation or KeyRotation.model_validate({}))


@admin("GET", "/<partner_id>/subscriptions", 404, responses=ok(Subscriptions))
def list_subscriptions(partner_id: str) -> dict[str, Any]:
    """List subscriptions"""
    events = services(router).partners.subscriptions(partner_id)
    return answer(Subscriptions, {"partnerId": partner_id, "events": events})


@admin("POST", "/<partner_id>/subscriptions", 400, 404, responses=ok(Subscriptions))
def add_subscriptions(partner_id: str, patterns: EventPatterns) -> dict[str, Any]:
    """Subscribe to event types"""
    events = services(router).partners.subscribe(partner_id, patterns)
    return answer(Subscriptions, {"partnerId": partner_id, "events": events})


@admin("DELETE", "/<partner_id>/subscriptions", 400, 404, responses=ok(Subscriptions))
def remove_subscriptions(partner_id: str, patterns: EventPatterns) -> dict[str, Any]:
    """Unsubscribe from event types"""
    events = services(router).partners.unsubscribe(partner_id, patterns)
    return answer(Subscriptions, {"partnerId": partner_id, "events": events})
