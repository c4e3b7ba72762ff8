"""The domain's typed errors, raised by the service layer and the stores under it.

Each names what went wrong for the caller; the HTTP API maps them to status codes in its
exception handlers (webhooks.api.errors) and the CLI prints their message. A message never
carries a secret.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error a caller of the service layer is meant to see."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """The request (body, path or query) is not acceptable; ``message`` says where and why."""

    def __init__(self, detail: str, part: str = "body") -> None:
        super().__init__(detail)
        # "body" or "query" (the API words the two differently), "" for a message of its own
        self.part = part


class Unauthenticated(ServiceError):
    """No credential, or one that is not valid."""


class Throttled(ServiceError):
    """Too many failed credentials from one source; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(ServiceError):
    """The credential is valid but may not do this (or the feature is switched off)."""


class NotFound(ServiceError):
    pass


class Conflict(ServiceError):
    """The resource's state does not allow this now (inactive partner, duplicate key)."""


class Unavailable(ServiceError):
    """A dependency (queue, database) is away or not configured; retrying later may work."""
