"""What a route needs from the invocation: the services (set by the handler per invocation,
Powertools' "sharing contextual data") and, on partner routes, the calling partner."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseContentModel
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from ..models import ErrorResponse
from ..partners.model import Partner
from ..services import Services

Route = TypeVar("Route", bound=Callable[..., Any])
API = "/api/v1"
ADMIN = f"{API}/admin"
ADMIN_SECURITY: list[dict[str, list[str]]] = [{"AdminKey": []}]
PARTNER_SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]
# the partner's own routes (auth.PARTNER_PREFIXES): its API key or a portal token, either one
SELF_SERVICE_SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"PortalToken": []}]

ERROR_TEXT = {
    400: "Invalid request",
    401: "Missing or invalid credential",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    422: "Unprocessable",
    429: "Too many failed key attempts from this source; see Retry-After",
    500: "Internal server error",
    503: "A dependency is unavailable; retry later",
}


def services(router: BaseRouter) -> Services:
    return cast(Services, router.context["services"])


def source_ip(router: BaseRouter) -> str:
    """The caller's address as API Gateway saw it (the local runtime sets it too); "unknown"
    for an event without one (a hand-written test event: Powertools' accessor raises there)."""
    event = cast(APIGatewayProxyEvent, router.current_event)
    identity = (event.get("requestContext") or {}).get("identity") or {}
    found = identity.get("sourceIp") if isinstance(identity, dict) else None
    return found if isinstance(found, str) and found else "unknown"


def stage_prefix(requested_path: str, route_path: str) -> str:
    """What is before the route's path in the requested one: API Gateway's ``requestContext.path``
    is the route's behind a stage (``/Prod``) or a custom domain's base path; "" locally."""
    return requested_path[: -len(route_path)] if requested_path.endswith(route_path) else ""


def calling_partner(router: BaseRouter) -> Partner:
    return cast(Partner, router.context["partner"])


def described(description: str, model: Any = None) -> OpenAPIResponse:
    """One OpenAPI response: a description and, if given, the JSON body's model."""
    if model is None:
        return OpenAPIResponse(description=description)
    return OpenAPIResponse(
        description=description, content={"application/json": OpenAPIResponseContentModel(model=model)}
    )


OK = {200: described("OK")}


def ok(model: Any) -> dict[int, OpenAPIResponse]:
    """A 200 answer with ``model`` as its body (one of ``services.answers``)."""
    return {200: described("OK", model)}


def errors(*codes: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI ``responses`` for error codes, each an :class:`ErrorResponse`."""
    return {code: described(ERROR_TEXT[code], ErrorResponse) for code in codes}


def operation(
    router: BaseRouter,
    method: str,
    rule: str,
    *error_codes: int,
    security: list[dict[str, list[str]]],
    tags: list[str],
    responses: dict[int, OpenAPIResponse] | None = None,
) -> Callable[[Route], Route]:
    """Register a route the way every route here is documented: the operationId is the
    function's name in camelCase, the summary its docstring's first paragraph, ``responses``
    the successes (default: 200) and ``error_codes`` the errors, each an ErrorResponse."""

    def register(func: Route) -> Route:
        head, *rest = func.__name__.split("_")
        route: Callable[[Route], Route] = router.route(
            rule,
            method,
            operation_id=head + "".join(word.title() for word in rest),
            summary=" ".join((func.__doc__ or "").strip().split("\n\n")[0].split()),
            responses={**(OK if responses is None else responses), **errors(*error_codes)},
            security=security,
            tags=tags,
        )
        return route(func)

    return register


def admin_operation(router: BaseRouter, tag: str) -> Callable[..., Callable[[Route], Route]]:
    """``operation`` for the admin key: each may also answer 401, 403, 429, 500 and 503."""

    def admin(
        method: str, rule: str, *error_codes: int, responses: dict[int, OpenAPIResponse] | None = None
    ) -> Callable[[Route], Route]:
        codes = sorted({*error_codes, 401, 403, 429, 500, 503})
        return operation(
            router, method, rule, *codes, security=ADMIN_SECURITY, tags=[tag], responses=responses
        )

    return admin
