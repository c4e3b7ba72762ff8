"""The core of the events API: accept a validated batch and enqueue it atomically.

A request's events travel as one envelope message (one SQS request per API request).
Only a batch larger than one message is split, into as few envelopes as the size limit
allows, sent together with SendMessageBatch. The response never calls an event
enqueued unless SQS accepted the message that holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError

from ..errors import PayloadTooLarge
from ..models import AcceptedEvent, EventIn, new_event_ids, to_json, utc_timestamp, utf8_size
from ..observability import logger
from ..queues import OutgoingMessage, Queue, describe_error, send_all

# Room kept per event, beyond its envelope, so every message it becomes fits the same
# limit: a delivery message to a non-first endpoint on its longest trip (partner and
# endpoint ids in the body and again as attributes with the 200-character event type,
# attempts, slot, wait, hops, acceptance time: ~570 bytes), its dead letter (attributes
# with a lastError of up to 1,000 characters: ~1,580 bytes) and a dispatch remainder
# owing it to one endpoint (~200 bytes). Measured in test_ingest_core
# (test_the_largest_legal_event_fits_every_message_it_becomes_for_a_non_first_endpoint).
DELIVERY_OVERHEAD_BYTES = 2048


class EventTooLarge(PayloadTooLarge):
    def __init__(self, index: int, size: int, limit: int) -> None:
        super().__init__(
            f"Event [{index}] is {size} bytes once enqueued; "
            f"the queue accepts at most {limit} bytes per message"
        )
        self.index = index


@dataclass
class Envelope:
    """Events packed into one events-queue message; ``body`` is what SQS receives."""

    indexes: list[int] = field(default_factory=list)
    body: str = ""


def accept_events(events: list[EventIn]) -> list[AcceptedEvent]:
    """Give each event its id and the acceptance timestamp, in place: the dicts are the ones
    validation just made (setting two keys is a quarter of the cost of new dicts)."""
    now = utc_timestamp()
    accepted = cast(list[AcceptedEvent], events)
    for event_id, event in zip(new_event_ids(len(accepted)), accepted, strict=True):
        event["eventId"] = event_id
        event["timestamp"] = now
    return accepted


def pack_envelopes(events: Sequence[AcceptedEvent], source: str | None, limit: int) -> list[Envelope]:
    """Pack events, in order, into as few messages of at most ``limit`` bytes as possible."""
    head = '{"version":1,' + (f'"source":{to_json(source)},' if source else "") + '"events":['
    tail = "]}"
    # the usual case, one envelope with room to spare, in one encoding (the same text the
    # loop below builds: head, the events joined by commas, tail)
    whole = head + to_json(events)[1:-1] + tail
    if events and utf8_size(whole) + DELIVERY_OVERHEAD_BYTES <= limit:
        return [Envelope(list(range(len(events))), whole)]
    envelopes: list[Envelope] = []
    parts: list[str] = []
    current = Envelope()
    size = len(head) + len(tail)
    for index, event in enumerate(events):
        part = to_json(event)
        part_bytes = utf8_size(part)
        alone = len(head) + part_bytes + len(tail)
        if alone + DELIVERY_OVERHEAD_BYTES > limit:
            raise EventTooLarge(index, alone + DELIVERY_OVERHEAD_BYTES, limit)
        if parts and size + 1 + part_bytes > limit:
            current.body = head + ",".join(parts) + tail
            envelopes.append(current)
            current, parts, size = Envelope(), [], len(head) + len(tail)
        size += part_bytes + (1 if parts else 0)
        parts.append(part)
        current.indexes.append(index)
    if parts:
        current.body = head + ",".join(parts) + tail
        envelopes.append(current)
    return envelopes


@dataclass(frozen=True)
class IngestOutcome:
    status_code: int
    response: dict[str, Any]  # an ``IngestResponse``, as JSON (the API documents the model)
    failed: int


class Ingestor:
    def __init__(self, queue: Queue, max_message_bytes: int) -> None:
        self.queue = queue
        self.max_message_bytes = max_message_bytes

    def enqueue(self, events: Sequence[AcceptedEvent], source: str | None) -> IngestOutcome:
        """Raises :class:`EventTooLarge` before sending anything if one event cannot fit."""
        envelopes = pack_envelopes(events, source, self.max_message_bytes)
        if len(envelopes) == 1:
            failed, reason = self._send_one(envelopes[0])
        else:
            failed, reason = self._send_many(envelopes)
        failed_indexes = {i for n in failed for i in envelopes[n].indexes}
        return _outcome(events, failed_indexes, reason)

    def _send_one(self, envelope: Envelope) -> tuple[set[int], str]:
        try:
            self.queue.send(envelope.body)
            return set(), ""
        except (BotoCoreError, ClientError) as exc:
            logger.warning("events queue send failed", extra={"error": describe_error(exc)})
            return {0}, "the events queue is unavailable"

    def _send_many(self, envelopes: list[Envelope]) -> tuple[set[int], str]:
        sent = send_all(self.queue, [OutgoingMessage(str(n), e.body) for n, e in enumerate(envelopes)])
        if sent.unavailable:
            reason = "the events queue is unavailable"
        else:
            reason = "the events queue rejected part of the batch" if sent.rejected else ""
        return {int(i) for i in sent.unsent}, reason


def _outcome(events: Sequence[AcceptedEvent], failed: set[int], reason: str) -> IngestOutcome:
    error = f"Failed to enqueue: {reason}"
    results: list[dict[str, Any]] = [
        {"eventId": e["eventId"], "eventType": e["eventType"], "status": "success"} for e in events
    ]
    for i in failed:
        results[i].update(status="failed", error=error)
    if not failed:
        message = f"All {len(events)} events successfully enqueued"
        return IngestOutcome(202, {"message": message, "results": results}, 0)
    if len(failed) == len(events):
        message = f"No events were enqueued: {reason}"
        return IngestOutcome(503, {"message": message, "results": results}, len(failed))
    message = f"Some events failed to enqueue: {reason}"
    return IngestOutcome(207, {"message": message, "results": results}, len(failed))
