"""The layer's exceptions: one tree, rooted at :class:`WebhooksError`.

Every exception the layer raises on purpose derives from ``WebhooksError``, so a caller
(a handler, the CLI, a test) can tell "the platform refused or could not" from a bug. A
message names what went wrong and never carries a secret. No exception carries an HTTP
status: the API maps the kinds to status codes in one table (``webhooks.api.errors.STATUS``)
and the CLI prints the message.

::

    WebhooksError
    ├── ServiceError             what a caller is meant to see (API answer, CLI message)
    │   ├── InvalidInput             400  body, path or query not acceptable
    │   │   ├── BodyError              ingest.json_input: not I-JSON, a number out of range
    │   │   └── NotUtf8                api.replies: a base64 body that is not UTF-8
    │   ├── Unauthenticated          401  no credential, or not a valid one
    │   ├── Forbidden                403  valid credential, not allowed (or feature off)
    │   ├── NotFound                 404
    │   │   ├── PartnerNotFound        partners.model
    │   │   └── EndpointNotFound       endpoints.model: not this partner's, or gone
    │   ├── Conflict                 409  the resource's state does not allow it now
    │   │   └── IdempotencyKeyInUse    ingest.idempotency: the first request still runs
    │   ├── PayloadTooLarge          413  the request body over the size limit
    │   │   └── EventTooLarge          ingest.enqueue: one event cannot fit a queue message
    │   ├── Unprocessable            422  well-formed, but cannot be applied
    │   │   └── IdempotencyKeyReused   ingest.idempotency: the key came with another body
    │   ├── Throttled                429  too many failed credentials; ``retry_after``
    │   └── Unavailable              503  a dependency is away; retrying later may work
    ├── ConfigError              a configuration variable missing or invalid (names it)
    ├── InvalidSchema            ingest.catalog: a JSON Schema refused (the service: 400)
    ├── BadCursor                store.delivery_log: a page cursor not ours (the service: 400)
    ├── DestinationRefused       delivery.ssrf: a webhook URL the SSRF guard will not reach
    ├── RetryLater               delivery.policy: put the delivery back on the queue for later
    ├── UnreadableEnvelope       dispatch.fanout: a record for the events DLQ, with the reason
    ├── FanOutIncomplete         dispatch.fanout: deliveries neither sent nor re-enqueued
    ├── FilterError              dispatch.filters: an endpoint event filter that cannot be used
    └── BatchDeferred            dispatch.batch: the partner store is away; the batch comes back

The leaves live next to the code that raises them; this module holds the root and the
kinds the API maps. Not in the tree: ``ingest.schema_rules.OutOfTime`` is a jsonschema
error record yielded while validating, never raised.
"""

from __future__ import annotations

UNAVAILABLE = "Service temporarily unavailable, please retry"


class WebhooksError(Exception):
    """Root of every exception the layer raises on purpose."""


class ConfigError(WebhooksError):
    """A configuration variable is missing or invalid; the message names it."""


class ServiceError(WebhooksError):
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


class PayloadTooLarge(ServiceError):
    """The request, or a part of it, is larger than the platform accepts."""


class Unprocessable(ServiceError):
    """The request is well-formed but cannot be applied (e.g. a key reused with another body)."""


class Unavailable(ServiceError):
    """A dependency (queue, database) is away or not configured; retrying later may work."""
