"""The core of the dispatch function: fan an envelope of events out to delivery messages.

One delivery message per (event, endpoint): every endpoint of an active partner with an
active subscription matching the event type (exact, ``prefix.*``, ``*``) and, when it has a
filter, whose filter matches the event (:func:`webhooks.dispatch.filters.matches` on the
event as the partner receives it, no I/O). A partner's first endpoint is the partner
document's own URL (its message has no ``endpointId``). An event of the platform's reserved
types goes only to the partner it is about (:func:`recipients`, applied per partner), then
to each of that partner's subscribing endpoints. So one endpoint's failures never touch
another's deliveries, not even another endpoint of the same partner.

A stored filter that no longer parses (validated on write, so only one written around the
API or by a version with other limits) is logged as an error and its endpoint gets every
event it subscribes to: a filter narrows what an endpoint receives, and a receiver can drop
an event it did not want, but nobody can recover events dispatch silently dropped.

If fan-out fails part-way, only the (event, endpoint) pairs not yet sent go back on the
events queue as a new envelope (``EventEnvelope.endpoints``) and the original is
acknowledged, so no endpoint gets a second delivery message for the same event from a
retry. A remainder is not matched again: what it names was owed when the envelope was
first fanned out. A remainder written before endpoints existed (``partners``) is owed to
those partners' first endpoints. A remainder is split into as many envelopes as the events
queue's message size needs (each pair costs ~75 bytes: thousands of endpoints owed one
event would not fit one message). First endpoints' pairs are packed apart from the others,
and an envelope of first endpoints only also carries the pre-endpoints ``partners`` field,
so a dispatcher rolled back to before endpoints reads it right (one naming other endpoints
it would fan out afresh: drain those before such a rollback, see README).

Each re-enqueued remainder carries a hop count and the time the first envelope was accepted;
past webhooks.queues.MAX_HOPS or MAX_AGE_SECONDS the envelope is dead-lettered instead
(Lambda's recursive-loop detection is off for this function). Delivery messages start with
the same hop count and acceptance time, so deliver's bounds count from the event's arrival.

What remains at-least-once (a partner dedupes on ``webhook-id``): a SendMessageBatch
whose response is lost after SQS stored the messages; a dispatch that crashes (or times
out) between sending and the deletion of its record; and a record whose re-enqueue also
fails, which is retried whole.

Metrics: ``DeliveriesEnqueued``, ``EventsWithoutSubscribers`` (no endpoint subscribes),
``EventsFiltered`` ((event, endpoint) pairs a filter excluded), ``DeliveriesRequeued``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from ..delivery.backoff import retry_delay_seconds
from ..errors import WebhooksError
from ..models import DeliveryMessage, Event, EventEnvelope, to_json, utf8_size
from ..observability import MetricUnit, logger, metrics
from ..partners.store import PartnerStore, Target
from ..partners.subscriptions import recipients
from ..queues import OutgoingMessage, Queue, loop_bound, send_all
from ..store.event_store import EventStore
from .filters import matches

# (partner id, endpoint id): endpoint id None is the partner's first endpoint
Pair = tuple[str, str | None]

# When the partner store is away, a batch comes back after 5 s, 10 s, 20 s ... (at most the
# queue's 180 s visibility) instead of the full visibility timeout every time.
STORE_RETRY_BASE_MS = 5000
STORE_RETRY_MAX_SECONDS = 180


class UnreadableEnvelope(WebhooksError):
    """A record dispatch cannot understand: it goes to the events DLQ with this reason."""


class FanOutIncomplete(WebhooksError):
    """Some deliveries could not be enqueued, nor re-enqueued: SQS retries the record."""


def parse_envelope(body: str) -> EventEnvelope:
    try:
        return EventEnvelope.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        if first["loc"] and first["loc"][0] == "version":
            raise UnreadableEnvelope(f"unsupported envelope version: {first.get('input')!r}") from None
        raise UnreadableEnvelope(f"malformed envelope: {where}: {first['msg']}") from None


@dataclass
class FanOutResult:
    sent: int = 0
    without_subscribers: list[str] = field(default_factory=list)
    filtered: int = 0  # (event, endpoint) pairs a filter excluded
    requeued: int = 0


class Dispatcher:
    def __init__(
        self,
        store: PartnerStore,
        delivery_queue: Queue,
        events_queue: Queue,
        events_dlq: Queue,
        executor: Executor,
        event_store: EventStore | None = None,
        max_message_bytes: int = 262_144,
    ) -> None:
        self.store = store
        self.max_message_bytes = max_message_bytes  # the events queue's, for remainders
        self.delivery_queue = delivery_queue
        self.events_queue = events_queue
        self.events_dlq = events_dlq
        self.executor = executor
        self.event_store = event_store

    def subscribers(self, envelopes: Iterable[EventEnvelope]) -> dict[str, list[Target]]:
        """The endpoints of every event type in the batch: one store query for all of them."""
        self.store.sync()  # a partner removed or unsubscribed elsewhere gets nothing from now on
        return self.store.targets({e.eventType for env in envelopes for e in env.events})

    def defer(self, receipts: list[tuple[str, int]], reason: str) -> None:
        """Hand a whole batch back to SQS with a short backoff: (receipt handle, receive count)."""
        for receipt, receive_count in receipts:
            delay = min(STORE_RETRY_MAX_SECONDS, retry_delay_seconds(receive_count, STORE_RETRY_BASE_MS))
            # if this fails the record still comes back, after the queue's visibility timeout
            with contextlib.suppress(BotoCoreError, ClientError):
                self.events_queue.change_visibility(receipt, delay)
        metrics.add_metric(name="BatchesDeferred", unit=MetricUnit.Count, value=1)
        logger.warning("batch deferred", extra={"reason": reason, "records": len(receipts)})

    def dead_letter(self, body: str, reason: str, message_id: str) -> None:
        self.events_dlq.send(body, {"reason": reason, "originalMessageId": message_id})
        metrics.add_metric(name="EnvelopesDeadLettered", unit=MetricUnit.Count, value=1)
        logger.error("envelope dead-lettered", extra={"reason": reason, "message_id": message_id})

    def over_bound(self, envelope: EventEnvelope, body: str, message_id: str, accepted_at: float) -> bool:
        """Dead-letter an envelope re-enqueued too often or for too long; say whether it was."""
        reason = loop_bound(envelope.hops or 0, accepted_at, time.time())
        if reason is None:
            return False
        metrics.add_metric(name="EnvelopesOverBound", unit=MetricUnit.Count, value=1)
        self.dead_letter(body, reason, message_id)
        return True

    def fan_out(
        self, envelope: EventEnvelope, subscribers: dict[str, list[Target]], accepted_at: float | None = None
    ) -> FanOutResult:
        """One delivery message per (event, endpoint). ``subscribers``: the endpoints per event
        type (:meth:`subscribers`). ``accepted_at``: when the first envelope was accepted (epoch
        seconds; its SentTimestamp), carried by what this sends."""
        result = FanOutResult()
        accepted_at = envelope.acceptedAt or accepted_at or time.time()
        hops = envelope.hops or 0
        owed = envelope.owed()
        pairs: list[tuple[Event, Pair]] = []
        for event in envelope.events:
            if owed is not None:  # a re-enqueued remainder: only those still owed, not matched again
                targets = [Target(p, ep, None) for p, ep in owed.get(event.eventId, [])]
            else:
                targets = subscribers.get(event.eventType, [])
            # a platform event (endpoint.disabled) goes only to the partner it is about, then
            # to each of that partner's endpoints that subscribe to it
            allowed = set(recipients(event.eventType, event.data, {t.partner_id: None for t in targets}))
            targets = [t for t in targets if t.partner_id in allowed]
            passed = self._matching(event, targets)
            result.filtered += len(targets) - len(passed)
            if not targets:
                result.without_subscribers.append(event.eventId)
            pairs.extend((event, target) for target in passed)
        if result.without_subscribers:
            metrics.add_metric(
                name="EventsWithoutSubscribers", unit=MetricUnit.Count, value=len(result.without_subscribers)
            )
            logger.info("events without subscribers", extra={"event_ids": result.without_subscribers})
        if result.filtered:
            metrics.add_metric(name="EventsFiltered", unit=MetricUnit.Count, value=result.filtered)

        deliveries = [
            DeliveryMessage(partnerId=p, endpointId=ep, event=e, hops=hops, acceptedAt=accepted_at)
            for e, (p, ep) in pairs
        ]
        messages = [
            OutgoingMessage(id=str(n), body=d.as_body(), attributes=d.attributes())
            for n, d in enumerate(deliveries)
        ]
        unsent = self._send_all(messages)
        if self.event_store is not None and owed is None:
            # kept for replay: after the sends (off the delivery path), and only events
            # someone was owed; best effort
            kept = {e.eventId: e for e, _ in pairs}
            self.event_store.save(kept.values())
        result.sent = len(messages) - len(unsent)
        metrics.add_metric(name="DeliveriesEnqueued", unit=MetricUnit.Count, value=result.sent)
        if unsent:
            self._requeue(envelope, [pairs[int(m)] for m in sorted(unsent, key=int)], accepted_at)
            result.requeued = len(unsent)
        return result

    @staticmethod
    def _matching(event: Event, targets: list[Target]) -> list[Pair]:
        """The (partner, endpoint) pairs of ``targets`` whose filter lets ``event`` through."""
        if all(t.filter is None for t in targets):  # the common case: no dump of the event
            return [(t.partner_id, t.endpoint_id) for t in targets]
        as_received = event.model_dump()
        return [
            (t.partner_id, t.endpoint_id)
            for t in targets
            if t.filter is None or matches(t.filter, as_received)
        ]

    def _send_all(self, messages: list[OutgoingMessage]) -> set[str]:
        """Send in concurrent SendMessageBatch calls; return the ids still unsent after retries."""
        return send_all(self.delivery_queue, messages, self.executor.map).unsent

    def _requeue(
        self, envelope: EventEnvelope, pending: list[tuple[Event, Pair]], accepted_at: float
    ) -> None:
        """Re-enqueue the pairs still owed, in envelopes that each fit the events queue."""
        rests = remainders(
            envelope.source, pending, (envelope.hops or 0) + 1, accepted_at, self.max_message_bytes
        )
        for sent, rest in enumerate(rests):
            try:
                self.events_queue.send(rest)
            except (BotoCoreError, ClientError) as exc:
                # the record is retried whole: the envelopes sent so far become duplicates
                # the receivers dedupe (webhook-id), as a lost send response would
                raise FanOutIncomplete(
                    f"{len(pending)} deliveries unsent; {len(rests) - sent} of {len(rests)} "
                    "remainder envelopes not re-enqueued"
                ) from exc
        metrics.add_metric(name="DeliveriesRequeued", unit=MetricUnit.Count, value=len(pending))
        logger.warning(
            "fan-out incomplete, remainder re-enqueued",
            extra={"pending": len(pending), "envelopes": len(rests)},
        )


def remainders(
    source: str | None, pending: list[tuple[Event, Pair]], hops: int, accepted_at: float, limit: int
) -> list[str]:
    """The bodies of the envelopes that re-enqueue ``pending`` (in order), each at most
    ``limit`` bytes: first endpoints' pairs apart from the others' (their envelopes also
    carry ``partners``, for a dispatcher from before endpoints). Sizes are counted from each
    part's own JSON plus its separators, so a body is never larger than counted; a single
    event with one pair is sent even if larger (ingest's reserve keeps it from being so)."""
    bodies: list[str] = []
    for first in (True, False):
        group = [(e, t) for e, t in pending if (t[1] is None) == first]
        for chunk in _chunks(source, group, hops, accepted_at, limit, first):
            bodies.append(_remainder_body(source, chunk, hops, accepted_at, first))
    return bodies


def _chunks(
    source: str | None,
    group: list[tuple[Event, Pair]],
    hops: int,
    accepted_at: float,
    limit: int,
    first: bool,
) -> list[list[tuple[Event, Pair]]]:
    """``group`` cut into runs whose envelopes each fit ``limit`` (every run at least one pair)."""
    keys = 2 if first else 1  # an event's key in endpoints (and in partners)
    empty: dict[str, object] = {"version": 1, "source": source, "events": [], "endpoints": {}}
    if first:
        empty["partners"] = {}
    base = utf8_size(to_json({**empty, "hops": hops, "acceptedAt": accepted_at}))
    event_costs: dict[str, int] = {}

    def event_cost(event: Event) -> int:  # the event with its comma, its key(s): "id":[],
        if event.eventId not in event_costs:
            key = utf8_size(to_json(event.eventId)) + 4
            event_costs[event.eventId] = utf8_size(to_json(event.model_dump())) + 1 + key * keys
        return event_costs[event.eventId]

    chunks: list[list[tuple[Event, Pair]]] = []
    current: list[tuple[Event, Pair]] = []
    size, seen = base, set[str]()
    for event, pair in group:
        # the pair in endpoints (and its partner id in partners), each with its comma
        cost = utf8_size(to_json(list(pair))) + 1 + (utf8_size(to_json(pair[0])) + 1 if first else 0)
        if current and size + cost + (0 if event.eventId in seen else event_cost(event)) > limit:
            chunks.append(current)
            current, size, seen = [], base, set[str]()
        if event.eventId not in seen:
            cost += event_cost(event)
            seen.add(event.eventId)
        current.append((event, pair))
        size += cost
    if current:
        chunks.append(current)
    return chunks


def _remainder_body(
    source: str | None, chunk: list[tuple[Event, Pair]], hops: int, accepted_at: float, first: bool
) -> str:
    endpoints: dict[str, list[Pair]] = {}
    events: dict[str, Event] = {}
    for event, pair in chunk:
        endpoints.setdefault(event.eventId, []).append(pair)
        events[event.eventId] = event
    partners = {eid: [p for p, _ in pairs] for eid, pairs in endpoints.items()} if first else None
    rest = EventEnvelope(
        source=source,
        events=list(events.values()),
        partners=partners,
        endpoints=endpoints,
        hops=hops,
        acceptedAt=accepted_at,
    )
    return to_json(rest.model_dump(exclude_none=True))
