"""The JSON answers of the API and the CLI, as models: what the OpenAPI document shows for
every success answer, and what each answer is checked against before it is sent.

A service builds its answer as it always has and passes it through :func:`answer`: a key the
model does not know, a missing one or a value of the wrong type fails there (a 500 in the
API, in the tests first) instead of changing the contract unseen. The JSON stays what it was:
keys in the model's field order (today's order), a key the service left out stays out
(``exclude_unset``: ``problems``, ``missing``, ``error`` ... appear only when they apply), and
numbers keep their kind (``int | float``: pydantic would write a lax ``float`` field's 24 as 24.0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Number = int | float


class Answer(BaseModel):
    # extra="forbid": the document says additionalProperties false, and a key added to a
    # view without its model is an error here rather than an undocumented field
    # defer_build: built on first use, not at import (the ingest function imports the services
    # but answers none of these: its cold start does not pay for them)
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


A = TypeVar("A", bound=Answer)


def answer(model: type[A], value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` checked against ``model`` and written back as the JSON answer."""
    return model.model_validate(value).model_dump(mode="json", by_alias=True, exclude_unset=True)


class Health(Answer):
    status: Literal["ok"]


class Deleted(Answer):
    deleted: str = Field(description="the id or name deleted")


# partners


class EndpointHealth(Answer):
    status: Literal["enabled", "disabled"]
    disabledAt: str | None
    disabledReason: str | None
    consecutiveFailures: int
    failingSince: str | None
    pausedUntil: str | None = Field(description="deliveries wait until then (the endpoint's Retry-After)")
    parkedDeliveries: int | None = Field(
        None, description="deliveries parked while disabled (reading one partner only)"
    )


class PartnerView(Answer):
    """A partner as the API shows it: never its API key, its secret or URL credentials."""

    partnerId: str
    name: str
    webhookUrl: str = Field(description="credentials in the URL masked")
    isActive: bool
    headers: dict[str, str] = Field(description="custom header names; values shown as ***")
    timeoutMs: int | None
    rateLimit: int | None
    publishScopes: list[str] | None
    receiveScopes: list[str] | None = Field(
        description="what it may subscribe its endpoints to itself; null: its first endpoint's events"
    )
    apiKeyLegacy: bool = Field(description="a Node-era key hashed by `webhooks migrate`: rotate it")
    endpoint: EndpointHealth
    createdAt: str | None
    updatedAt: str | None
    events: list[str] = Field(description="subscriptions")
    problems: list[str] | None = Field(
        None, description="fields of the stored document of the wrong type (read as absent)"
    )


class PartnerDetail(PartnerView):
    deadLettered: int | None = Field(
        None, description="dead-lettered and not delivered since: what recover would resend"
    )


class CreatedPartner(PartnerView):
    apiKey: str = Field(description="shown once")
    secretKey: str = Field(description="shown once")


class SkippedPartner(Answer):
    partnerId: str
    problems: list[str]


class PartnerList(Answer):
    partners: list[PartnerView]
    skipped: list[SkippedPartner] = Field(description="stored documents with fields of the wrong type")


class Subscriptions(Answer):
    partnerId: str
    events: list[str]


class SecretRotated(Answer):
    partnerId: str
    secretKey: str = Field(description="shown once")
    previousSecretValidHours: Number


class ApiKeyRotated(Answer):
    partnerId: str
    apiKey: str = Field(description="shown once")
    previousKeyValidHours: Number


# deliveries


class Attempt(Answer):
    """One delivery attempt in the log."""

    id: str
    eventId: str
    eventType: str
    partnerId: str
    endpointId: str = Field(
        description="the endpoint it was made to (an attempt logged before endpoints: the first)"
    )
    attempt: int
    outcome: str
    statusCode: int | None
    latencyMs: Number | None
    errorClass: str | None
    errorMessage: str | None
    responseBody: str | None
    timestamp: str


class StoredEvent(Answer):
    eventId: str
    eventType: str
    timestamp: str
    data: dict[str, Any]


class DeliveryPage(Answer):
    deliveries: list[Attempt] = Field(description="newest first")
    nextCursor: str | None = Field(description="the next page's cursor; null: the last page")


class EventDeliveries(Answer):
    eventId: str
    event: StoredEvent | None = Field(description="null once no longer stored")
    deliveries: list[Attempt]


class OwnEndpoint(Answer):
    partnerId: str
    name: str
    endpoint: EndpointHealth


# recovery


class Enqueued(Answer):
    partnerId: str
    endpointId: str | None = Field(None, description="the endpoint sent to (the per-endpoint routes)")
    enqueued: list[str] = Field(description="event ids sent to the delivery queue")
    failed: list[str] = Field(description="event ids the delivery queue refused (retry later)")
    missing: list[str] | None = Field(None, description="recover: failed events no longer stored")
    remaining: int | None = Field(None, description="recover: failed deliveries left for the next call")


class EndpointEnabled(PartnerView):
    replayed: int
    remainingParked: int
    error: str | None = Field(None, description="present when the delivery queue refused some")


# stats


class StatsBucket(Answer):
    start: str
    delivered: int
    failed: int
    deadLettered: int
    accepted: int


class PartnerStats(Answer):
    partnerId: str
    name: str
    isActive: bool
    endpoint: EndpointHealth
    parked: int
    delivered: int
    failed: int
    deadLettered: int
    latencyP50Ms: float | None = Field(None, description="absent: no deliveries in the window")
    latencyP95Ms: float | None = None


class Stats(Answer):
    window: Literal["hour", "day"]
    bucketSeconds: int
    series: list[StatsBucket]
    partners: list[PartnerStats]
    latencyBoundsMs: list[int]
    skipped: list[SkippedPartner]


# event types


class EventTypeView(Answer):
    name: str
    json_schema: dict[str, Any] = Field(alias="schema")
    description: str
    createdAt: str | None
    updatedAt: str | None


class EventTypeList(Answer):
    eventTypes: list[EventTypeView]


# portal tokens


class PortalToken(Answer):
    token: str = Field(description="shown once; send as `Authorization: Bearer <token>`")
    expiresAt: str
    url: str = Field(description="opens the console signed in as the partner (the token in the fragment)")


class PortalTokensRevoked(Answer):
    revoked: int = Field(description="how many of the partner's tokens were revoked")


# endpoints


class EndpointView(Answer):
    endpointId: str
    partnerId: str
    url: str = Field(description="credentials in the URL masked")
    description: str | None
    events: list[str]
    filter: dict[str, Any] | None
    headers: dict[str, str] = Field(description="names only: values are often credentials")
    retrySchedule: list[int] | None = Field(description="null: the service's default schedule")
    rateLimitPerSecond: int | None
    timeoutMs: int | None
    first: bool = Field(description="the partner's own webhookUrl (cannot be deleted)")
    health: EndpointHealth
    createdAt: str | None
    updatedAt: str | None
    problems: list[str] | None = None


class CreatedEndpoint(EndpointView):
    secretKey: str = Field(description="shown only in this answer")


class EndpointList(Answer):
    endpoints: list[EndpointView]


class EndpointSecretRotated(Answer):
    endpointId: str
    secretKey: str = Field(description="shown once")
    previousSecretValidHours: Number


class EnabledEndpoint(EndpointView):
    replayed: int = Field(description="parked deliveries sent to the delivery queue")
    remainingParked: int = Field(description="parked deliveries left for the next call")
    error: str | None = Field(None, description="present when the delivery queue refused some")
