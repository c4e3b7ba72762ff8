"""What a route needs from the invocation: the services (set by the handler per invocation,
Powertools' "sharing contextual data") and, on partner routes, the calling partner."""

from __future__ import annotations

from typing import Any, cast

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse, OpenAPIResponseContentModel

from ..models import ErrorResponse
from ..partners import Partner
from ..services import Services

API = "/api/v1"
ADMIN = f"{API}/admin"
ADMIN_SECURITY: list[dict[str, list[str]]] = [{"AdminKey": []}]
PARTNER_SECURITY: list[dict[str, list[str]]] = [{"ApiKey": []}]

ERROR_TEXT = {
    400: "Invalid request",
    401: "Missing or invalid credential",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    413: "Too large",
    422: "Unprocessable",
    429: "Too many failed admin key attempts from this source; see Retry-After",
    500: "Internal server error",
    503: "A dependency is unavailable; retry later",
}


def services(router: BaseRouter) -> Services:
    return cast(Services, router.context["services"])


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


def errors(*codes: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI ``responses`` for error codes, each an :class:`ErrorResponse`."""
    return {code: described(ERROR_TEXT[code], ErrorResponse) for code in codes}


def admin_errors(*codes: int) -> dict[int, OpenAPIResponse]:
    """Every admin route can also answer 401, 403 (admin API off), 429 (throttled), 500, 503."""
    return errors(*sorted({*codes, 401, 403, 429, 500, 503}))
