"""Sending again (operator): one event, everything failed since a time, a test event, and
the deliveries parked while an endpoint was disabled."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from ..services.answers import EndpointEnabled, Enqueued
from ..services.recovery import Outcome
from ..services.schemas import RecoverRequest, ReplayRequest
from .context import admin_operation, described, services
from .replies import json_response

router = Router()  # under /api/v1/admin/partners
admin = admin_operation(router, "recovery")
ENQUEUED = {202: described("Enqueued for delivery", Enqueued), 207: described("Partly enqueued", Enqueued)}
# all sent / some sent / the delivery queue refused everything (retry later)
ENQUEUE_STATUS: dict[Outcome, int] = {"all": 202, "some": 207, "none": 503}
ENABLE_STATUS: dict[Outcome, int] = {"all": 200, "some": 207, "none": 503}


@admin("POST", "/<partner_id>/replay", 400, 404, 409, responses=ENQUEUED)
def replay(partner_id: str, request: ReplayRequest) -> Response[Any]:
    """Resend one event to the partner (409 if it is not subscribed to the event's type,
    unless `force` is true)"""
    result = services(router).recovery.replay(partner_id, request.eventId, force=request.force)
    return json_response(ENQUEUE_STATUS[result.outcome], result.body())


@admin("POST", "/<partner_id>/recover", 400, 404, 409, responses=ENQUEUED)
def recover(partner_id: str, request: RecoverRequest) -> Response[Any]:
    """Resend every delivery that failed since a time (up to 1,000 per call; `remaining`
    says if more are left)"""
    result = services(router).recovery.recover(partner_id, request.since)
    return json_response(ENQUEUE_STATUS[result.outcome], result.body())


@admin("POST", "/<partner_id>/test", 404, 409, responses=ENQUEUED)
def send_test(partner_id: str) -> Response[Any]:
    """Send a webhook.test event now"""
    result = services(router).recovery.send_test(partner_id)
    return json_response(ENQUEUE_STATUS[result.outcome], result.body())


@admin(
    "POST",
    "/<partner_id>/endpoint/enable",
    404,
    responses={200: described("OK", EndpointEnabled), 207: described("Partly replayed", EndpointEnabled)},
)
def enable_endpoint(partner_id: str) -> Response[Any]:
    """Enable an endpoint disabled for failing and send it the deliveries parked meanwhile
    (up to 5,000 per call; `remainingParked` says if more are left)"""
    result = services(router).recovery.enable_endpoint(partner_id)
    return json_response(ENABLE_STATUS[result.outcome], result.body())
