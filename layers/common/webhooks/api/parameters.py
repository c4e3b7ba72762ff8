"""Query parameters are checked by name on every route: one the route does not declare is a
400 naming it, not silently ignored (``?stauts=failed`` would otherwise list everything, and
``?window=day`` misspelt would show the wrong hour).

One middleware for all routes, reading what each route declares from the same signature
the OpenAPI document is generated from; it runs after authentication, so an unknown caller
hears 401 first. The events route checks its key itself (after its size limit): there the
refusal is handed to the route (``QUERY_REFUSAL`` in the context), which raises it once the
caller is known. Routes outside the document (the console's files, Swagger UI, which reads
``?format=json``) are left alone.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from ..errors import InvalidInput
from ..ingest.json_input import listed
from .auth import EVENTS

QUERY_REFUSAL = "query_refusal"


def declared_query_parameters(route: Any) -> frozenset[str]:
    """The query parameter names a Powertools route declares (its ``Query()`` arguments)."""
    return frozenset(field.alias for field in route.dependant.query_params)


def reject_unknown_query(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    route = app.context.get("_route")  # the matched route, set by the resolver before middlewares
    if route is not None and route.include_in_schema:
        event = app.current_event
        given = {*(event.query_string_parameters or {}), *(event.multi_value_query_string_parameters or {})}
        unknown = sorted(given - declared_query_parameters(route))
        if unknown:
            # in the words pydantic uses for an unknown field of a body or query model
            refusal = InvalidInput(
                listed([f"{name[:100]}: Extra inputs are not permitted" for name in unknown]), "query"
            )
            if event.path != EVENTS:
                raise refusal
            app.append_context(**{QUERY_REFUSAL: refusal})
    return next_middleware(app)
