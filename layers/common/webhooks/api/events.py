"""The producers' route: a batch of events in, one envelope per request on the events queue.

Its body stays raw: the size limit, the partner key and the idempotency fingerprint come
before any parsing (413 before 401 before 400), and ingest parses I-JSON itself. A refusal
is a typed error the API's handlers answer (webhooks.api.errors), as on every route.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from ..ingest.events_api import invalid_body
from ..models import ErrorResponse, IngestResponse
from .context import PARTNER_SECURITY, described, operation, services, source_ip
from .parameters import QUERY_REFUSAL
from .replies import NotUtf8, dumps, json_response, raw_body

router = Router()


@operation(
    router,
    "POST",
    "/events",
    400,
    401,
    409,
    413,
    422,
    429,
    500,
    security=PARTNER_SECURITY,
    tags=["events"],
    responses={
        202: described("All events enqueued", IngestResponse),
        207: described("Some events enqueued; each result says which", IngestResponse),
        403: described(
            "Nothing enqueued: the platform's own event type, or outside the key's scopes", ErrorResponse
        ),
        503: described(
            "Nothing enqueued; retry later (IngestResponse, or ErrorResponse if no event was read)",
            IngestResponse,
        ),
    },
)
def post_events() -> Response[Any]:
    """Enqueue a batch of events"""
    headers = router.current_event.headers
    try:
        body = raw_body(router)
    except NotUtf8 as exc:
        raise invalid_body(exc.message) from None  # counted as a producer's invalid body
    answer = services(router).events.post_events(
        body,
        headers.get("x-api-key"),
        headers.get("idempotency-key"),
        source_ip(router),
        query_refusal=router.context.get(QUERY_REFUSAL),
    )
    # plain JSON values, written here: they skip the response validation's walk through
    # every result (a str body passes through unchanged)
    return json_response(answer.status_code, dumps(answer.body))
