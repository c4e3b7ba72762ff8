"""Endpoints: a partner's destinations, managed by the operator under
/api/v1/admin/partners/{partner_id}/endpoints (``admin_router``) or by the partner itself
under /api/v1/endpoints with its API key or a portal token (``router``). Both call the same
services; on the self-service routes the partner is the caller, so another partner's
endpoint id is a 404 like one that does not exist."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from ..services.answers import (
    CreatedEndpoint,
    Deleted,
    EnabledEndpoint,
    EndpointList,
    EndpointSecretRotated,
    EndpointView,
    Enqueued,
)
from ..services.recovery import Enabled, Outcome
from ..services.recovery import Enqueued as Sent
from ..services.schemas import EndpointCreate, EndpointUpdate, OwnReplayRequest, RecoverRequest, Rotation
from .context import (
    SELF_SERVICE_SECURITY,
    Route,
    admin_operation,
    calling_partner,
    described,
    ok,
    operation,
    services,
)
from .replies import json_response

admin_router = Router()  # under /api/v1/admin/partners
router = Router()  # under /api/v1
admin = admin_operation(admin_router, "endpoints")

CREATED = {201: described("Created (the secret shown only here)", CreatedEndpoint)}
ENQUEUED = {202: described("Enqueued for delivery", Enqueued), 207: described("Partly enqueued", Enqueued)}
ENABLED = {
    200: described("Enabled", EnabledEndpoint),
    207: described("Enabled, some parked deliveries refused by the queue", EnabledEndpoint),
}
# all sent / some sent / the delivery queue refused everything (retry later)
ENQUEUE_STATUS: dict[Outcome, int] = {"all": 202, "some": 207, "none": 503}
ENABLE_STATUS: dict[Outcome, int] = {"all": 200, "some": 207, "none": 503}


def own(
    method: str, rule: str, *error_codes: int, responses: dict[int, OpenAPIResponse] | None = None
) -> Callable[[Route], Route]:
    """A self-service route: the partner's API key or portal token; each may also answer 401
    (no or a wrong credential), 429 (too many wrong ones), 500 and 503."""
    codes = sorted({*error_codes, 401, 429, 500, 503})
    return operation(
        router,
        method,
        rule,
        *codes,
        security=SELF_SERVICE_SECURITY,
        tags=["self-service"],
        responses=responses,
    )


def _rotation(rotation: Rotation | None) -> Rotation:
    return rotation or Rotation.model_validate({})


def _sent(result: Sent) -> Response[Any]:
    return json_response(ENQUEUE_STATUS[result.outcome], result.body())


def _enabled(result: Enabled) -> Response[Any]:
    return json_response(ENABLE_STATUS[result.outcome], result.body())


def _me() -> str:
    return calling_partner(router).id


OptionalRotation = Annotated[Rotation | None, Body()]

# --- the operator's (admin key) -------------------------------------------------------


@admin("POST", "/<partner_id>/endpoints", 400, 404, 409, responses=CREATED)
def create_partner_endpoint(partner_id: str, new: EndpointCreate) -> Response[Any]:
    """Add an endpoint to a partner (its signing secret is shown only in this answer); 400
    names the path of a bad filter or schedule, 409 past 50 endpoints"""
    return json_response(201, services(admin_router).endpoints.create(partner_id, new))


@admin("GET", "/<partner_id>/endpoints", 404, responses=ok(EndpointList))
def list_partner_endpoints(partner_id: str) -> dict[str, Any]:
    """A partner's endpoints, its first (its own webhookUrl) first"""
    return services(admin_router).endpoints.list(partner_id)


@admin("GET", "/<partner_id>/endpoints/<endpoint_id>", 404, responses=ok(EndpointView))
def get_partner_endpoint(partner_id: str, endpoint_id: str) -> dict[str, Any]:
    """One endpoint of a partner, with its health and parked deliveries"""
    return services(admin_router).endpoints.get(partner_id, endpoint_id)


@admin("PATCH", "/<partner_id>/endpoints/<endpoint_id>", 400, 404, responses=ok(EndpointView))
def update_partner_endpoint(partner_id: str, endpoint_id: str, change: EndpointUpdate) -> dict[str, Any]:
    """Change an endpoint: what the body names (null removes a setting; events replace its
    event types)"""
    return services(admin_router).endpoints.update(partner_id, endpoint_id, change)


@admin("DELETE", "/<partner_id>/endpoints/<endpoint_id>", 404, 409, responses=ok(Deleted))
def delete_partner_endpoint(partner_id: str, endpoint_id: str) -> dict[str, Any]:
    """Delete an endpoint and its subscriptions (409 for the first: the partner's own URL)"""
    return services(admin_router).endpoints.delete(partner_id, endpoint_id)


@admin(
    "POST",
    "/<partner_id>/endpoints/<endpoint_id>/rotate-secret",
    400,
    404,
    responses=ok(EndpointSecretRotated),
)
def rotate_partner_endpoint_secret(
    partner_id: str, endpoint_id: str, rotation: OptionalRotation = None
) -> dict[str, Any]:
    """Rotate an endpoint's signing secret (shown once; the old one signs too for the overlap)"""
    return services(admin_router).endpoints.rotate_secret(partner_id, endpoint_id, _rotation(rotation))


@admin("POST", "/<partner_id>/endpoints/<endpoint_id>/enable", 404, responses=ENABLED)
def enable_partner_endpoint(partner_id: str, endpoint_id: str) -> Response[Any]:
    """Enable an endpoint and send it the deliveries parked while it was disabled (up to 5,000
    per call; `remainingParked` says if more are left)"""
    return _enabled(services(admin_router).recovery.enable(partner_id, endpoint_id))


@admin("POST", "/<partner_id>/endpoints/<endpoint_id>/test", 404, 409, responses=ENQUEUED)
def test_partner_endpoint(partner_id: str, endpoint_id: str) -> Response[Any]:
    """Send a webhook.test event to this endpoint now (409 if the partner is inactive)"""
    return _sent(services(admin_router).recovery.test_endpoint(partner_id, endpoint_id))


# --- the partner's own (its API key or a portal token) ----------------------------------


@own("GET", "/endpoints", responses=ok(EndpointList))
def list_own_endpoints() -> dict[str, Any]:
    """Your endpoints, your first (your webhookUrl) first"""
    return services(router).endpoints.list(_me())


@own("POST", "/endpoints", 400, 403, 409, responses=CREATED)
def create_own_endpoint(new: EndpointCreate) -> Response[Any]:
    """Add an endpoint (its signing secret is shown only in this answer); 400 names the path
    of a bad filter or schedule, 403 event types beyond what the operator lets you receive"""
    return json_response(201, services(router).endpoints.create_own(_me(), new))


@own("GET", "/endpoints/<endpoint_id>", 404, responses=ok(EndpointView))
def get_own_endpoint(endpoint_id: str) -> dict[str, Any]:
    """One of your endpoints, with its health and parked deliveries"""
    return services(router).endpoints.get(_me(), endpoint_id)


@own("PATCH", "/endpoints/<endpoint_id>", 400, 403, 404, responses=ok(EndpointView))
def update_own_endpoint(endpoint_id: str, change: EndpointUpdate) -> dict[str, Any]:
    """Change one of your endpoints (null removes a setting; events replace its event types;
    403 for event types beyond what the operator lets you receive)"""
    return services(router).endpoints.update_own(_me(), endpoint_id, change)


@own("DELETE", "/endpoints/<endpoint_id>", 404, 409, responses=ok(Deleted))
def delete_own_endpoint(endpoint_id: str) -> dict[str, Any]:
    """Delete one of your endpoints (409 for your first: change its URL instead)"""
    return services(router).endpoints.delete(_me(), endpoint_id)


@own("POST", "/endpoints/<endpoint_id>/rotate-secret", 400, 404, responses=ok(EndpointSecretRotated))
def rotate_own_endpoint_secret(endpoint_id: str, rotation: OptionalRotation = None) -> dict[str, Any]:
    """Rotate an endpoint's signing secret (shown once; the old one signs too for the overlap)"""
    return services(router).endpoints.rotate_secret(_me(), endpoint_id, _rotation(rotation))


@own("POST", "/endpoints/<endpoint_id>/enable", 404, responses=ENABLED)
def enable_own_endpoint(endpoint_id: str) -> Response[Any]:
    """Enable an endpoint disabled for failing and send it what was parked meanwhile (up to
    5,000 per call)"""
    return _enabled(services(router).recovery.enable(_me(), endpoint_id))


@own("POST", "/endpoints/<endpoint_id>/test", 404, 409, responses=ENQUEUED)
def test_own_endpoint(endpoint_id: str) -> Response[Any]:
    """Send a webhook.test event to one of your endpoints now"""
    return _sent(services(router).recovery.test_endpoint(_me(), endpoint_id))


@own("POST", "/endpoints/<endpoint_id>/replay", 400, 404, 409, responses=ENQUEUED)
def replay_to_own_endpoint(endpoint_id: str, request: OwnReplayRequest) -> Response[Any]:
    """Send one of your events again to this endpoint (404: not an event of yours; 409: this
    endpoint is not subscribed to its type)"""
    return _sent(services(router).recovery.replay_to_endpoint(_me(), endpoint_id, request.eventId))


@own("POST", "/endpoints/<endpoint_id>/recover", 400, 404, 409, responses=ENQUEUED)
def recover_own_endpoint(endpoint_id: str, request: RecoverRequest) -> Response[Any]:
    """Send again every delivery to this endpoint that failed since a time (up to 1,000 per
    call; `remaining` says if more are left)"""
    return _sent(services(router).recovery.recover_endpoint(_me(), endpoint_id, request.since))
