"""Portal tokens (operator): a partner's short-lived console link, and revoking them all."""

from __future__ import annotations

import re
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from ..services.answers import PortalToken, PortalTokensRevoked
from ..services.schemas import PortalTokenRequest
from .context import admin_operation, described, ok, services, stage_prefix
from .replies import json_response

router = Router()  # under /api/v1/admin/partners
admin = admin_operation(router, "portal")
# a host name, IPv4 or [IPv6], and a port: anything else in Host is not put into a link
HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})(:[0-9]{1,5})?$")


def api_base() -> str:
    """Where this API was reached: scheme, host and stage prefix (``https://x.execute-api.../Prod``
    behind API Gateway, ``http://127.0.0.1:3000`` locally), so the link opens the same console."""
    event = cast(APIGatewayProxyEvent, router.current_event)
    host = event.headers.get("host") or ""
    if not HOST.match(host):
        host = event.request_context.domain_name or "localhost"
    # API Gateway says https here; the local server, which speaks http, sets nothing
    scheme = "https" if event.headers.get("x-forwarded-proto", "").lower() == "https" else "http"
    prefix = stage_prefix(event.request_context.path or event.path, event.path)
    return f"{scheme}://{host}{prefix}"


@admin(
    "POST", "/<partner_id>/portal-tokens", 400, 404, 409, responses={201: described("Created", PortalToken)}
)
def create_portal_token(
    partner_id: str, request: Annotated[PortalTokenRequest | None, Body()] = None
) -> Response[Any]:
    """Issue a portal token: a console link signed in as the partner (shown once; default 1 h, at
    most 24 h); 409 if the partner is inactive"""
    issued = services(router).portal.issue(
        partner_id, request or PortalTokenRequest.model_validate({}), api_base()
    )
    return json_response(201, issued)


@admin("DELETE", "/<partner_id>/portal-tokens", 404, responses=ok(PortalTokensRevoked))
def revoke_portal_tokens(partner_id: str) -> dict[str, Any]:
    """Revoke every portal token of the partner, at once"""
    return services(router).portal.revoke(partner_id)
