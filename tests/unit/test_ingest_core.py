"""The enqueue rules with an in-memory queue: packing, and what a partial failure answers."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

import pytest
from botocore.exceptions import EndpointConnectionError
from bson import ObjectId

from webhooks.dispatch.fanout import remainders
from webhooks.endpoints.model import new_endpoint_id
from webhooks.ingest.enqueue import EventTooLarge, Ingestor, accept_events, pack_envelopes
from webhooks.models import (
    AcceptedEvent,
    DeliveryMessage,
    Event,
    EventEnvelope,
    EventIn,
    IngestResponse,
)
from webhooks.queues import MAX_HOPS, OutgoingMessage, string_attributes


class FakeQueue:
    """Accepts messages except those whose body contains a marker; can be 'down'."""

    def __init__(self, reject_marker: str | None = None, down: bool = False) -> None:
        self.sent: list[str] = []
        self.reject_marker = reject_marker
        self.down = down
        self.calls = 0

    def send(self, body: str, attributes: Mapping[str, object] | None = None, delay_seconds: int = 0) -> str:
        self.calls += 1
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        self.sent.append(body)
        return "id"

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        self.calls += 1
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        rejected = [m.id for m in messages if self.reject_marker and self.reject_marker in m.body]
        self.sent.extend(m.body for m in messages if m.id not in rejected)
        return rejected

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        raise NotImplementedError

    def enqueued_ids(self) -> list[str]:
        return [e.eventId for body in self.sent for e in EventEnvelope.model_validate_json(body).events]


def events(n: int, size: int = 10) -> list[EventIn]:
    return [EventIn(eventType="order.created", data={"n": i, "pad": "x" * size}) for i in range(n)]


def test_a_batch_is_one_message_when_it_fits() -> None:
    queue = FakeQueue()
    accepted = accept_events(events(100))
    outcome = Ingestor(queue, 262_144).enqueue(accepted, "partner")
    assert outcome.status_code == 202
    assert queue.calls == 1 and len(queue.sent) == 1
    assert queue.enqueued_ids() == [e["eventId"] for e in accepted]
    assert IngestResponse.model_validate(outcome.response).message == "All 100 events successfully enqueued"


def test_a_large_batch_is_split_into_as_few_envelopes_as_fit() -> None:
    accepted = accept_events(events(10, size=30_000))
    envelopes = pack_envelopes(accepted, "p", 100_000)
    assert [len(e.indexes) for e in envelopes] == [3, 3, 3, 1]
    assert all(len(e.body) <= 100_000 for e in envelopes)
    assert [i for e in envelopes for i in e.indexes] == list(range(10))
    queue = FakeQueue()
    outcome = Ingestor(queue, 100_000).enqueue(accepted, "p")
    assert outcome.status_code == 202 and queue.calls == 1  # one SendMessageBatch


def test_one_event_too_large_for_a_message_is_refused_before_sending() -> None:
    queue = FakeQueue()
    accepted = accept_events(events(1, size=5) + events(1, size=200_000))
    with pytest.raises(EventTooLarge, match=r"Event \[1\]"):
        Ingestor(queue, 100_000).enqueue(accepted, "p")
    assert queue.calls == 0


def test_partial_failure_is_207_and_lists_exactly_what_was_enqueued() -> None:
    queue = FakeQueue()
    accepted = accept_events(events(9, size=30_000))
    # reject the envelope that holds event 4, whatever SQS retries
    queue.reject_marker = json.dumps({"n": 4})[:-1].replace(" ", "")
    outcome = Ingestor(queue, 100_000).enqueue(accepted, "p")
    assert outcome.status_code == 207
    ok = [r.eventId for r in IngestResponse.model_validate(outcome.response).results if r.status == "success"]
    failed = [
        r.eventId for r in IngestResponse.model_validate(outcome.response).results if r.status == "failed"
    ]
    assert sorted(filter(None, ok)) == sorted(queue.enqueued_ids())
    assert accepted[4]["eventId"] in failed and len(failed) == 3
    assert IngestResponse.model_validate(outcome.response).message.startswith(
        "Some events failed to enqueue: "
    )
    assert all(
        r.error for r in IngestResponse.model_validate(outcome.response).results if r.status == "failed"
    )


def test_queue_down_is_503_with_every_event_failed_never_202() -> None:
    queue = FakeQueue(down=True)
    outcome = Ingestor(queue, 262_144).enqueue(accept_events(events(3)), "p")
    assert outcome.status_code == 503
    assert {r.status for r in IngestResponse.model_validate(outcome.response).results} == {"failed"}
    outcome = Ingestor(queue, 100_000).enqueue(accept_events(events(9, size=30_000)), "p")
    assert outcome.status_code == 503


def test_one_envelope_and_many_are_the_same_text_per_event() -> None:
    """The single-envelope shortcut writes what packing event by event writes."""
    events = accept_events(
        [EventIn(eventType="order.created", data={"n": n, "text": "ü\u2028"}) for n in range(30)]
    )
    (whole,) = pack_envelopes(events, "p1", 256 * 1024)
    split = pack_envelopes(events, "p1", 2600)  # forces the event-by-event path
    assert len(split) > 1
    parts = [e for envelope in split for e in EventEnvelope.model_validate_json(envelope.body).events]
    assert EventEnvelope.model_validate_json(whole.body).events == parts
    assert whole.indexes == list(range(30))


def test_event_ids_are_unique_and_shaped_like_before() -> None:
    ids = [e["eventId"] for e in accept_events([EventIn(eventType="a.b", data={}) for _ in range(500)])]
    assert len(set(ids)) == 500
    assert all(len(i) == len("event_") + 24 and int(i[6:], 16) >= 0 for i in ids)


def test_one_batch_call_runs_on_the_calling_thread_several_go_to_the_given_map() -> None:
    """A fan-out of up to 10 messages is one SendMessageBatch: no hand-off to an executor's
    thread and back for it; more calls still run through ``map_groups`` (side by side)."""
    from webhooks.queues import send_all

    used: list[int] = []

    def recording_map(fn, groups):  # type: ignore[no-untyped-def]
        used.append(len(groups))
        return map(fn, groups)

    queue = FakeQueue()
    few = [OutgoingMessage(str(n), f"m{n}") for n in range(10)]
    assert send_all(queue, few, recording_map).unsent == set()
    assert used == [] and queue.calls == 1 and len(queue.sent) == 10
    many = [OutgoingMessage(str(n), f"m{n}") for n in range(25)]
    assert send_all(queue, many, recording_map).unsent == set()
    assert used == [3] and queue.calls == 4 and len(queue.sent) == 35


def sqs_size(body: str, attributes: Mapping[str, object]) -> int:
    """What SQS counts against its message size: the body and each attribute's name, type and value."""
    return len(body.encode()) + sum(
        len(name) + len(a["DataType"]) + len(a["StringValue"].encode())
        for name, a in string_attributes(attributes).items()
    )


def largest_legal_event(limit: int) -> AcceptedEvent:
    """The largest event ingest accepts at ``limit`` (no source: the smallest envelope around
    it), with the longest event type."""
    low, high = 0, limit
    while low < high:  # the largest pad that pack_envelopes still accepts
        middle = (low + high + 1) // 2
        [candidate] = accept_events([EventIn(eventType="order." + "x" * 194, data={"pad": "p" * middle})])
        try:
            pack_envelopes([candidate], None, limit)
            low = middle
        except EventTooLarge:
            high = middle - 1
    [event] = accept_events([EventIn(eventType="order." + "x" * 194, data={"pad": "p" * low})])
    assert len(event["eventType"]) == 200
    pack_envelopes([event], None, limit)
    return event


def test_the_largest_legal_event_fits_every_message_it_becomes_for_a_non_first_endpoint() -> None:
    limit = 262_144
    event = Event.model_validate(largest_legal_event(limit))
    partner_id, endpoint_id = str(ObjectId()), new_endpoint_id()  # the longest ids there are
    now = time.time()
    # a delivery on its longest trip: every field a re-send sets, at its largest
    delivery = DeliveryMessage(
        partnerId=partner_id,
        endpointId=endpoint_id,
        event=event,
        priorAttempts=100,
        rateSlot=int(now),
        notBefore=now + 7 * 86_400 + 0.123456789,
        hops=MAX_HOPS,
        acceptedAt=now - 1 / 3,
    )
    assert sqs_size(delivery.as_body(), delivery.attributes()) <= limit
    # its dead letter, with the longest reason the DLQ keeps (lastError is cut at 1,000)
    letter = DeliveryMessage(partnerId=partner_id, endpointId=endpoint_id, event=event).as_body()
    reasons = {"attempts": 100, "lastStatus": 599, "lastError": "e" * 1000}
    assert sqs_size(letter, {**delivery.attributes(), **reasons}) <= limit
    # and a dispatch remainder owing it to one endpoint (either kind)
    for pair in ((partner_id, endpoint_id), (partner_id, None)):
        [body] = remainders(None, [(event, pair)], MAX_HOPS, now - 1 / 3, limit)
        assert len(body.encode()) <= limit
