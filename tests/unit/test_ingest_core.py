"""The enqueue rules with an in-memory queue: packing, and what a partial failure answers."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pytest
from botocore.exceptions import EndpointConnectionError

from webhooks.ingest.enqueue import EventTooLarge, Ingestor, accept_events, pack_envelopes
from webhooks.models import EventEnvelope, EventIn, IngestResponse
from webhooks.queues import OutgoingMessage


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
    split = pack_envelopes(events, "p1", 1200)  # forces the event-by-event path
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
