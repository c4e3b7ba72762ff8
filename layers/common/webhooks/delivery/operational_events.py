"""The platform's own events: ``endpoint.disabled``, logged, counted, and published through
the events queue to the partner it is about (``data.partnerId``), if that partner subscribes to
it; dispatch never sends it to another partner (webhooks.partners.subscriptions.recipients)."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from ..models import Event, EventEnvelope, new_event_id, to_json, utc_timestamp
from ..observability import MetricUnit, logger, metrics
from ..queues import Queue
from .health import Disabled

ENDPOINT_DISABLED_EVENT = "endpoint.disabled"


def announce(disabled: Disabled, events_queue: Queue | None) -> None:
    """The ``endpoint.disabled`` log line, metric, and event (to that partner, if subscribed)."""
    data = {
        "partnerId": disabled.partner_id,  # who the event is about: its only possible recipient
        "name": disabled.name,
        "consecutiveFailures": disabled.consecutive_failures,
        "failingSince": utc_timestamp(disabled.failing_since),
        "disabledAt": utc_timestamp(disabled.disabled_at),
        "reason": disabled.reason,
    }
    logger.error(ENDPOINT_DISABLED_EVENT, extra={"partner_id": disabled.partner_id, "endpoint": data})
    metrics.add_metric(name="EndpointDisabled", unit=MetricUnit.Count, value=1)
    if events_queue is None:
        return
    event = Event(
        eventId=new_event_id(), eventType=ENDPOINT_DISABLED_EVENT, timestamp=utc_timestamp(), data=data
    )
    envelope = EventEnvelope(source="webhooks", events=[event])
    try:
        events_queue.send(to_json(envelope.model_dump(exclude_none=True)))
    except (BotoCoreError, ClientError) as exc:
        logger.warning("endpoint.disabled event not sent", extra={"error": type(exc).__name__})
