"""The platform's own events about a partner's endpoints and deliveries, published through the
events queue like any producer's events and delivered to the partner's endpoints that
subscribe to them (by name, or by a pattern inside their own namespace: ``endpoint.*``,
``message.attempt.*``):

- ``message.attempt.exhausted``: a delivery dead-lettered after its attempts, or without a
  POST (a safety bound, an endpoint with no usable secret: ``lastStatus`` null);
- ``endpoint.failing``: an endpoint's failure streak reached half of the disabling rule's
  count (once per streak);
- ``endpoint.disabled``: an endpoint disabled by that rule;
- ``endpoint.enabled``, ``endpoint.secret.rotated``: published by the services
  (:func:`publish_operational`).

Each is about one partner (``data.partnerId``) and goes to that partner alone; dispatch never
sends it to another (webhooks.partners.subscriptions.recipients). Their types are reserved:
no producer can publish them. Never about themselves in a loop: a failed delivery of one of
them is never announced by another ``message.attempt.exhausted`` (:func:`exhausted_event`).
A deliver invocation collects its events and sends them at its end, in one message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ..endpoints.model import first_endpoint_id
from ..models import DeliveryMessage, Event, EventEnvelope, new_event_id, to_json, utc_timestamp
from ..observability import MetricUnit, logger, metrics
from ..partners.subscriptions import is_reserved
from ..queues import Queue
from .health import Disabled, Failing

ATTEMPT_EXHAUSTED_EVENT = "message.attempt.exhausted"
ENDPOINT_FAILING_EVENT = "endpoint.failing"
ENDPOINT_DISABLED_EVENT = "endpoint.disabled"
ENDPOINT_ENABLED_EVENT = "endpoint.enabled"
ENDPOINT_SECRET_ROTATED_EVENT = "endpoint.secret.rotated"
PLATFORM_SOURCE = "webhooks"  # the envelopes' source (dispatch counts these apart)
EVENTS_PER_ENVELOPE = 100  # as many as one API request may publish


def operational_event(event_type: str, data: Mapping[str, Any]) -> Event:
    """An operational event, checked: a reserved type, about the partner ``data`` names."""
    if not is_reserved(event_type):
        raise ValueError(f"{event_type!r} is not one of the platform's reserved event types")
    if not isinstance(data.get("partnerId"), str) or not data["partnerId"]:
        raise ValueError("an operational event names the partner it is about (data.partnerId)")
    return Event(eventId=new_event_id(), eventType=event_type, timestamp=utc_timestamp(), data=dict(data))


def publish(events: Sequence[Event], events_queue: Queue | None) -> None:
    """Send operational events to the events queue; never raises (a lost one is logged)."""
    if events_queue is None or not events:
        return
    for start in range(0, len(events), EVENTS_PER_ENVELOPE):
        part = list(events[start : start + EVENTS_PER_ENVELOPE])
        envelope = EventEnvelope(source=PLATFORM_SOURCE, events=part)
        try:
            events_queue.send(to_json(envelope.model_dump(exclude_none=True)))
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "operational events not sent",
                extra={"event_types": sorted({e.eventType for e in part}), "error": type(exc).__name__},
            )


def publish_operational(event_type: str, data: Mapping[str, Any], events_queue: Queue | None) -> None:
    """Publish one operational event (e.g. ``endpoint.enabled``, ``endpoint.secret.rotated``
    with ``{"partnerId", "endpointId", ...}``) to the partner ``data["partnerId"]`` names, if
    it subscribes to it. Raises ValueError for a type outside the reserved namespace or data
    without a partnerId; a queue that refuses it is logged, never raised."""
    publish([operational_event(event_type, data)], events_queue)


def exhausted_event(
    message: DeliveryMessage, endpoint_id: str, attempts: int, last_status: int | None
) -> Event | None:
    """``message.attempt.exhausted`` for a dead-lettered delivery (``last_status`` None: no
    answer, e.g. dead-lettered without a POST); None when the delivery was
    itself one of the platform's events (no event about an event about an event...)."""
    event = message.event
    if is_reserved(event.eventType):
        return None
    metrics.add_metric(name="AttemptsExhausted", unit=MetricUnit.Count, value=1)
    return operational_event(
        ATTEMPT_EXHAUSTED_EVENT,
        {
            "eventId": event.eventId,
            "eventType": event.eventType,
            "partnerId": message.partnerId,
            "endpointId": endpoint_id,
            "attempts": attempts,
            "lastStatus": last_status,
        },
    )


def health_event(notice: Disabled | Failing) -> Event:
    """The event of an endpoint health notice, with its log line and metric."""
    if isinstance(notice, Failing):
        data: dict[str, Any] = {
            "partnerId": notice.partner_id,
            "endpointId": notice.endpoint_id,
            "consecutiveFailures": notice.consecutive_failures,
            "failingSince": utc_timestamp(notice.failing_since),
            "lastError": notice.last_error,
        }
        logger.warning(ENDPOINT_FAILING_EVENT, extra={"partner_id": notice.partner_id, "endpoint": data})
        metrics.add_metric(name="EndpointFailing", unit=MetricUnit.Count, value=1)
        return operational_event(ENDPOINT_FAILING_EVENT, data)
    data = {
        "partnerId": notice.partner_id,  # who the event is about: its only possible recipient
        "endpointId": notice.endpoint_id or first_endpoint_id(notice.partner_id),
        "name": notice.name,
        "consecutiveFailures": notice.consecutive_failures,
        "failingSince": utc_timestamp(notice.failing_since),
        "disabledAt": utc_timestamp(notice.disabled_at),
        "reason": notice.reason,
    }
    logger.error(ENDPOINT_DISABLED_EVENT, extra={"partner_id": notice.partner_id, "endpoint": data})
    metrics.add_metric(name="EndpointDisabled", unit=MetricUnit.Count, value=1)
    return operational_event(ENDPOINT_DISABLED_EVENT, data)


def announce(disabled: Disabled, events_queue: Queue | None) -> None:
    """The ``endpoint.disabled`` log line, metric, and event (to that partner, if subscribed)."""
    publish([health_event(disabled)], events_queue)
