"""Errors to HTTP: every domain error, validation failure and outage answers JSON
``{"error": ...}`` with the status the contract names; nothing leaks a trace or a secret.

``STATUS`` is the one place a kind of error (webhooks.errors) becomes a status code; the
events route raises the same errors as the admin routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pymongo.errors import PyMongoError

from ..errors import (
    UNAVAILABLE,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    Throttled,
    Unauthenticated,
    Unavailable,
    Unprocessable,
)
from ..ingest.json_input import BodyError, error_path, listed
from ..observability import logger
from .auth import check_caller
from .replies import error_response

STATUS: dict[type[ServiceError], int] = {
    InvalidInput: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    Unprocessable: 422,
    Throttled: 429,
    Unavailable: 503,
}


def service_error(exc: ServiceError) -> Response[Any]:
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
    if isinstance(exc, InvalidInput) and exc.part:
        what = "request body" if exc.part == "body" else exc.part
        return error_response(status, f"Invalid {what}. Errors: {exc.message}")
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
    return error_response(status, exc.message, headers)


def invalid_request(exc: RequestValidationError) -> InvalidInput:
    """Powertools' validation errors in the API's words: ``<path>: <msg>; ...``, the body's
    fields named without the leading ``body``, query errors reported as such."""
    found: dict[str, list[str]] = {"path": [], "query": [], "body": []}
    for error in exc.errors():
        where, *loc = error["loc"]
        found["body" if where not in found else where].append(f"{error_path(tuple(loc))}: {error['msg']}")
    part = next(part for part in ("path", "query", "body") if found[part] or part == "body")
    return InvalidInput(listed(list(dict.fromkeys(found[part]))), part)


def _database_away(exc: PyMongoError) -> Response[Any]:
    # as the services answer it: a dependency is away, retry later (not a bug: no 500)
    logger.warning("database unavailable", extra={"error": type(exc).__name__})
    return error_response(503, UNAVAILABLE)


def _unexpected(exc: Exception) -> Response[Any]:
    logger.exception("unhandled error", extra={"error": type(exc).__name__})
    return error_response(500, "Internal server error")


def register(app: APIGatewayRestResolver, allowed_methods: Callable[[str], frozenset[str]]) -> None:
    """``allowed_methods(path)``: the methods served on a path, to tell 405 from 404."""

    def after_credentials(error: ServiceError) -> Response[Any]:
        # request validation runs before any middleware; the caller must still hear 401
        # before 400, and an unknown caller nothing about the body
        try:
            check_caller(app)
        except ServiceError as refused:
            return service_error(refused)
        except PyMongoError as exc:
            return _database_away(exc)
        return service_error(error)

    def not_json() -> InvalidInput | None:
        # Powertools reads forms and multipart too; this API's bodies are JSON only, and
        # `curl -d` without a Content-Type deserves that sentence, not a list of missing fields
        content_type = app.current_event.headers.get("content-type", "").strip()
        if not content_type or content_type.lower().startswith("application/json"):
            return None
        return InvalidInput(f"body: send JSON (Content-Type: application/json), not {content_type[:100]}")

    @app.exception_handler(RequestValidationError)
    def validation_failed(exc: RequestValidationError) -> Response[Any]:
        return after_credentials(not_json() or invalid_request(exc))

    @app.exception_handler(RequestUnsupportedContentType)
    def unsupported(_: RequestUnsupportedContentType) -> Response[Any]:
        return after_credentials(not_json() or InvalidInput("body: unsupported Content-Type"))

    @app.exception_handler(ValueError)
    def unreadable(exc: ValueError) -> Response[Any]:
        # Powertools raises a bare ValueError for a multipart body without a boundary
        refusal = not_json()
        return after_credentials(refusal) if refusal else _unexpected(exc)

    @app.exception_handler(BodyError)
    def bad_json(exc: BodyError) -> Response[Any]:
        # from Powertools' body parsing (json_body_deserializer), before the route's checks
        return after_credentials(exc)

    @app.exception_handler(UnicodeDecodeError)
    def not_utf8(_: UnicodeDecodeError) -> Response[Any]:
        return after_credentials(InvalidInput("body: not valid UTF-8"))

    @app.exception_handler(ServiceError)
    def refused(exc: ServiceError) -> Response[Any]:
        return service_error(exc)

    @app.not_found
    def not_found(_: NotFoundError) -> Response[Any]:
        method = app.current_event.http_method
        allowed = allowed_methods(app.current_event.path)
        if allowed and method not in allowed:
            return error_response(405, f"Method {method} not allowed", {"Allow": ", ".join(sorted(allowed))})
        return error_response(404, "Not found")

    app.exception_handler(PyMongoError)(_database_away)

    app.exception_handler(Exception)(_unexpected)
