"""Partners (operator): create, read, update, delete, subscriptions, signing secret."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from ..services.schemas import EventPatterns, PartnerCreate, PartnerUpdate, Rotation
from .context import ADMIN_SECURITY, OK, admin_errors, described, services
from .replies import json_response

router = Router()  # under /api/v1/admin/partners
TAGS = ["partners"]


@router.post(
    "",
    operation_id="createPartner",
    summary="Create a partner (returns its API key and secret once)",
    responses={201: described("Created"), **admin_errors(400, 409)},
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def create_partner(partner: PartnerCreate) -> Response[Any]:
    return json_response(201, services(router).partners.create(partner))


@router.get(
    "",
    operation_id="listPartners",
    summary="List partners",
    responses=OK | admin_errors(),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def list_partners() -> dict[str, Any]:
    return {"partners": services(router).partners.all()}


@router.get(
    "/<partner_id>",
    operation_id="getPartner",
    summary="Get a partner",
    responses=OK | admin_errors(404),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def get_partner(partner_id: str) -> dict[str, Any]:
    return services(router).partners.get(partner_id)


@router.patch(
    "/<partner_id>",
    operation_id="updatePartner",
    summary="Update name, URL, active state, headers, timeout, rate limit or publish scopes",
    responses=OK | admin_errors(400, 404),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def update_partner(partner_id: str, change: PartnerUpdate) -> dict[str, Any]:
    return services(router).partners.update(partner_id, change)


@router.delete(
    "/<partner_id>",
    operation_id="deletePartner",
    summary="Delete a partner and its subscriptions",
    responses=OK | admin_errors(404),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def delete_partner(partner_id: str) -> dict[str, Any]:
    services(router).partners.delete(partner_id)
    return {"deleted": partner_id}


@router.post(
    "/<partner_id>/rotate-secret",
    operation_id="rotateSecret",
    summary="Rotate the signing secret (the old one signs too, for the overlap)",
    responses=OK | admin_errors(400, 404),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def rotate_secret(partner_id: str, rotation: Annotated[Rotation | None, Body()] = None) -> dict[str, Any]:
    return services(router).partners.rotate_secret(partner_id, rotation or Rotation.model_validate({}))


def _subscriptions(partner_id: str, events: list[str]) -> dict[str, Any]:
    return {"partnerId": partner_id, "events": events}


@router.get(
    "/<partner_id>/subscriptions",
    operation_id="listSubscriptions",
    summary="List subscriptions",
    responses=OK | admin_errors(404),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def list_subscriptions(partner_id: str) -> dict[str, Any]:
    return _subscriptions(partner_id, services(router).partners.subscriptions(partner_id))


@router.post(
    "/<partner_id>/subscriptions",
    operation_id="addSubscriptions",
    summary="Subscribe to event types",
    responses=OK | admin_errors(400, 404),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def add_subscriptions(partner_id: str, patterns: EventPatterns) -> dict[str, Any]:
    return _subscriptions(partner_id, services(router).partners.subscribe(partner_id, patterns))


@router.delete(
    "/<partner_id>/subscriptions",
    operation_id="removeSubscriptions",
    summary="Unsubscribe from event types",
    responses=OK | admin_errors(400, 404),
    security=ADMIN_SECURITY,
    tags=TAGS,
)
def remove_subscriptions(partner_id: str, patterns: EventPatterns) -> dict[str, Any]:
    return _subscriptions(partner_id, services(router).partners.unsubscribe(partner_id, patterns))
