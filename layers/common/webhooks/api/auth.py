"""Who may call what, as one middleware: the admin key on /api/v1/admin, a partner's API key
on the partner's own delivery log. The events route checks its key itself (after the size
limit: a 413 comes first there), and health and the API description are public."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from .context import ADMIN, API, services, source_ip

PARTNER_PREFIX = f"{API}/deliveries"  # and below it


def check_caller(app: APIGatewayRestResolver) -> None:
    """Raise the domain error that refuses this caller; on a partner path, remember who it is."""
    event = app.current_event
    path = event.path
    source = source_ip(app)
    if path == ADMIN or path.startswith(f"{ADMIN}/"):
        services(app).admin.check(event.headers.get("x-admin-key"), source)
    elif path == PARTNER_PREFIX or path.startswith(f"{PARTNER_PREFIX}/"):
        partner = services(app).partner_keys.partner(event.headers.get("x-api-key"), source)
        app.append_context(partner=partner)


def authenticate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    check_caller(app)
    return next_middleware(app)
