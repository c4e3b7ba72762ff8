"""Who may call what, as one middleware: the admin key on /api/v1/admin, a partner's API key
or portal token on the partner's own routes. The events route checks its key itself (after
the size limit: a 413 comes first there), and health and the API description are public.
No admin route accepts a portal token, and the events route does not either."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from .context import ADMIN, API, services, source_ip

# the partner's own routes (each prefix and below it): its X-API-Key or a portal token
# (Authorization: Bearer) signs it in there, and nowhere else
PARTNER_PREFIXES = (f"{API}/deliveries", f"{API}/endpoints")
# the producers' route: its handler checks the key (api/events.py)
EVENTS = f"{API}/events"


def partner_route(path: str) -> bool:
    return any(path == prefix or path.startswith(f"{prefix}/") for prefix in PARTNER_PREFIXES)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None without one."""
    scheme, _, token = (headers.get("authorization") or "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def check_caller(app: APIGatewayRestResolver) -> None:
    """Raise the domain error that refuses this caller; on a partner path, remember who it is."""
    event = app.current_event
    path = event.path
    source = source_ip(app)
    if path == ADMIN or path.startswith(f"{ADMIN}/"):
        services(app).admin.check(event.headers.get("x-admin-key"), source)
    elif partner_route(path):
        api_key, token = event.headers.get("x-api-key"), bearer_token(event.headers)
        if token is not None and not api_key:
            partner = services(app).portal.partner(token, source)
        else:
            partner = services(app).partner_keys.partner(api_key, source)
        app.append_context(partner=partner)


def authenticate(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    check_caller(app)
    return next_middleware(app)
