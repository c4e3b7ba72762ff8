"""Before any POST: a copy back early waits on, and a delivery past a bound is dead-lettered.
No queue, database or receiver: an in-memory queue and a store that must not be asked."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from webhooks.config import Settings, load_settings
from webhooks.delivery.backoff import visibility_cap
from webhooks.delivery.batch import Batch
from webhooks.delivery.deliverer import MAX_UNATTEMPTED_RECEIVES, Deliverer
from webhooks.delivery.flow_control import WAIT_RECEIVES_PER_COPY, deliberate_waits
from webhooks.delivery.http import HttpResult
from webhooks.delivery.policy import RetryLater, fallback_decision
from webhooks.delivery.receipt import Receipt
from webhooks.endpoints.model import Endpoint, first_endpoint_id
from webhooks.models import DeliveryMessage, Event, new_event_id, utc_timestamp
from webhooks.observability import metrics
from webhooks.queues import MAX_AGE_SECONDS, MAX_HOPS, OutgoingMessage


class MemoryQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, object], int]] = []
        self.visibility: list[tuple[str, int]] = []

    def send(self, body: str, attributes: Mapping[str, object] | None = None, delay_seconds: int = 0) -> str:
        self.sent.append((body, dict(attributes or {}), delay_seconds))
        return "id"

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        return []

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.visibility.append((receipt_handle, seconds))


class NoStore:
    """Any call means the delivery went past the step under test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the partner store was asked ({name})")


@pytest.fixture
def settings() -> Settings:
    return load_settings(webhook_max_attempts=3, webhook_retry_delay=1000)


def deliverer(settings: Settings, queue: MemoryQueue, dlq: MemoryQueue) -> Deliverer:
    return Deliverer(settings, NoStore(), None, queue, dlq, rng=random.Random(1))  # type: ignore[arg-type]


def message(**fields: Any) -> DeliveryMessage:
    event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
    return DeliveryMessage(partnerId="p1", event=event, **fields)


def test_a_copy_back_before_its_not_before_hides_for_the_rest_of_the_wait_without_a_post(
    settings: Settings,
) -> None:
    queue, dlq = MemoryQueue(), MemoryQueue()
    now = time.time()
    early = message(priorAttempts=1, notBefore=now + 3600, acceptedAt=now - 900)
    with pytest.raises(RetryLater):  # reported failed: SQS hands it back when its wait is over
        deliverer(settings, queue, dlq).deliver(
            early.as_body(), Receipt("r1", 1, now - 900, now), Batch(), deadline=None
        )
    [(handle, seconds)] = queue.visibility
    assert handle == "r1" and 3590 <= seconds <= 3600
    assert queue.sent == [] and dlq.sent == []


def test_a_seven_day_wait_is_handed_to_a_fresh_copy_on_the_third_early_receive(settings: Settings) -> None:
    # one copy holding a 7-day wait would be received 16 times: past the delivery queue's
    # redrive (10) and its 4-day retention; a fresh copy takes the rest of the wait instead
    queue, dlq = MemoryQueue(), MemoryQueue()
    now = time.time()
    waiting = message(priorAttempts=2, notBefore=now + 6 * 86_400, acceptedAt=now - 86_400, hops=4)
    outcome = deliverer(settings, queue, dlq).deliver(
        waiting.as_body(), Receipt("r1", WAIT_RECEIVES_PER_COPY, now - 86_000, now), Batch()
    )
    assert outcome.outcome == "waiting" and outcome.attempt == 2
    assert queue.visibility == [] and dlq.sent == []
    [(body, attributes, delay)] = queue.sent
    copy = DeliveryMessage.model_validate_json(body)
    assert copy.priorAttempts == 2 and copy.hops == 5 and copy.acceptedAt == waiting.acceptedAt
    assert copy.notBefore is not None and abs(copy.notBefore - waiting.notBefore) <= 1.5  # type: ignore[operator]
    assert delay == 900 and attributes["eventId"] == waiting.event.eventId
    # and the bound on receives without an attempt allows every receive a copy spends waiting
    assert deliberate_waits(waiting, now) == WAIT_RECEIVES_PER_COPY
    assert MAX_UNATTEMPTED_RECEIVES + WAIT_RECEIVES_PER_COPY < 10  # the queue's redrive


def test_a_visibility_change_never_exceeds_twelve_hours_from_the_receive(settings: Settings) -> None:
    queue, dlq = MemoryQueue(), MemoryQueue()
    now = time.time()
    far = message(priorAttempts=1, notBefore=now + 20 * 3600, acceptedAt=now)
    received_1000_s_ago = Receipt("r1", 1, now - 2000, now - 1000)
    with pytest.raises(RetryLater):
        deliverer(settings, queue, dlq).deliver(far.as_body(), received_1000_s_ago, Batch())
    [(_, seconds)] = queue.visibility
    assert 43_200 - 1000 - 5 <= seconds <= 43_200 - 1000
    assert visibility_cap(received_at=now - 50_000, now=now) == 0


def test_long_waits_allow_their_deliberate_receives_and_no_more() -> None:
    sent = time.time()
    assert deliberate_waits(message(), sent) == 0
    assert deliberate_waits(message(notBefore=sent + 600), sent) == 0  # DelaySeconds holds it all
    assert deliberate_waits(message(notBefore=sent + 3600), sent) == 1
    assert deliberate_waits(message(notBefore=sent + 30 * 3600), sent) == 3


@pytest.mark.parametrize(
    ("fields", "receive_count", "reason"),
    [
        ({}, MAX_UNATTEMPTED_RECEIVES + 1, "received 6 times without an attempt completing"),
        ({"hops": MAX_HOPS + 1}, 1, f"re-sent {MAX_HOPS + 1} times"),
        ({"acceptedAt": time.time() - MAX_AGE_SECONDS - 86_400}, 1, "accepted 36.0 days ago"),
    ],
)
def test_a_delivery_past_a_bound_is_dead_lettered_with_the_reason_and_no_post(
    settings: Settings, fields: dict[str, Any], receive_count: int, reason: str
) -> None:
    queue, dlq = MemoryQueue(), MemoryQueue()
    looping = message(priorAttempts=2, **fields)
    batch = Batch()
    outcome = deliverer(settings, queue, dlq).deliver(
        looping.as_body(), Receipt("r1", receive_count, time.time(), time.time()), batch
    )
    assert outcome.outcome == "dead_lettered"
    [(body, attributes, _)] = dlq.sent
    assert str(attributes["lastError"]).startswith(reason)
    assert attributes["attempts"] == 2 and attributes["eventId"] == looping.event.eventId
    letter = DeliveryMessage.model_validate_json(body)
    assert (letter.priorAttempts, letter.hops, letter.acceptedAt) == (0, 0, None)  # redrive starts over
    assert queue.sent == []
    # the partner is told, as after a last POST: no status, the attempts made so far
    [exhausted] = batch.events
    assert exhausted.eventType == "message.attempt.exhausted"
    assert exhausted.data == {
        "eventId": looping.event.eventId,
        "eventType": "order.created",
        "partnerId": "p1",
        "endpointId": first_endpoint_id("p1"),
        "attempts": 2,
        "lastStatus": None,
    }


def test_an_operational_event_past_a_bound_is_dead_lettered_without_announcing_it(settings: Settings) -> None:
    queue, dlq = MemoryQueue(), MemoryQueue()
    event = Event(
        eventId=new_event_id(), eventType="message.attempt.exhausted", timestamp=utc_timestamp(), data={}
    )
    looping = DeliveryMessage(partnerId="p1", event=event, hops=MAX_HOPS + 1)
    batch = Batch()
    outcome = deliverer(settings, queue, dlq).deliver(
        looping.as_body(), Receipt("r1", 1, time.time(), time.time()), batch
    )
    assert outcome.outcome == "dead_lettered" and len(dlq.sent) == 1
    assert batch.events == []  # never an event about an event about an event


class SecretlessEndpoints:
    """An endpoint store whose one endpoint (a legacy document) has no usable secret."""

    def get_cached(self, partner_id: str, endpoint_id: str | None) -> Endpoint:
        return Endpoint(endpoint_id or "ep_x", partner_id, "Legacy", True, "https://l.example/h", "", False)


def test_an_unsignable_endpoints_dead_letter_is_announced_to_its_partner(settings: Settings) -> None:
    queue, dlq = MemoryQueue(), MemoryQueue()
    unsignable = message(priorAttempts=1, endpointId="ep_2")
    batch = Batch()
    outcome = Deliverer(settings, SecretlessEndpoints(), None, queue, dlq).deliver(  # type: ignore[arg-type]
        unsignable.as_body(), Receipt("r1", 1, time.time(), time.time()), batch
    )
    assert outcome.outcome == "dead_lettered" and "no usable signing secret" in str(
        dlq.sent[0][1]["lastError"]
    )
    [exhausted] = batch.events
    assert (exhausted.eventType, exhausted.data["endpointId"]) == ("message.attempt.exhausted", "ep_2")
    assert (exhausted.data["attempts"], exhausted.data["lastStatus"]) == (1, None)


def test_a_long_wait_still_within_its_deliberate_receives_is_not_dead_lettered(settings: Settings) -> None:
    queue, dlq = MemoryQueue(), MemoryQueue()
    now = time.time()
    waiting = message(priorAttempts=1, notBefore=now + 100, acceptedAt=now - 3500)
    receipt = Receipt("r1", MAX_UNATTEMPTED_RECEIVES + 1, now - 3500, now)  # needed one wait
    outcome = deliverer(settings, queue, dlq).deliver(waiting.as_body(), receipt, Batch())
    assert outcome.outcome == "waiting" and dlq.sent == []  # the wait goes on in a fresh copy
    assert len(queue.sent) == 1


def emf_values(out: str, name: str) -> tuple[list[float], str]:
    for line in out.splitlines():
        if line.startswith('{"_aws"') and name in line:
            document = json.loads(line)
            [definitions] = document["_aws"]["CloudWatchMetrics"]
            units = {m["Name"]: m["Unit"] for m in definitions["Metrics"]}
            values = document[name]
            return (values if isinstance(values, list) else [values]), units[name]
    return [], ""


def test_delivery_start_lag_is_measured_from_when_the_delivery_was_due_on_its_first_receive(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()  # what earlier tests added without an invocation to flush it
    queue, dlq = MemoryQueue(), MemoryQueue()
    now = time.time()
    # sent 100 s ago, due 30 s ago (its backoff); far past its age bound, so it stops before
    # the partner store: what is measured is the lag of its start, not of a POST
    due_30_s_ago = message(notBefore=now - 30, acceptedAt=now - MAX_AGE_SECONDS - 10)

    @metrics.log_metrics
    def invocation(receive_count: int, context: object) -> None:
        deliverer(settings, queue, dlq).deliver(
            due_30_s_ago.as_body(), Receipt("r", receive_count, now - 100, now), Batch()
        )

    invocation(1, None)
    values, unit = emf_values(capsys.readouterr().out, "DeliveryStartLag")
    assert unit == "Seconds" and len(values) == 1 and 29 <= values[0] <= 40
    invocation(2, None)  # a later receive of the same message: its start was measured already
    assert emf_values(capsys.readouterr().out, "DeliveryStartLag") == ([], "")


def test_the_fallback_decision_retries_on_the_plain_backoff_and_dead_letters_the_last_attempt(
    settings: Settings,
) -> None:
    assert fallback_decision(HttpResult(200, 1.0), 1, settings).outcome == "delivered"
    first = fallback_decision(HttpResult(429, 1.0, "HTTP 429", retry_after="\xb2"), 1, settings)
    second = fallback_decision(HttpResult(500, 1.0, "HTTP 500"), 2, settings)
    assert (first.outcome, first.delay_seconds, second.delay_seconds) == ("retry", 1, 2)
    assert fallback_decision(HttpResult(500, 1.0), 3, settings).outcome == "dead_lettered"
    assert fallback_decision(HttpResult(410, 1.0), 1, settings).outcome == "dead_lettered"


def test_a_copy_back_early_claims_no_rate_limit_slot_for_its_batch(settings: Settings) -> None:
    from webhooks.endpoints.model import Endpoint

    limited = Endpoint("ep_p1", "p1", "Acme", True, "https://acme.example/h", "whsec_x", True, rate_limit=5)
    reserved: list[tuple[str, int, int]] = []

    class Partners:
        def sync(self) -> None:
            pass

    class Store:
        partner_store = Partners()

        def get_cached(self, partner_id: str, endpoint_id: str | None) -> Endpoint:
            return limited

    class Limiter:
        def reserve(self, partner_id: str, limit: int, count: int) -> None:
            reserved.append((partner_id, limit, count))

    fakes: Any = (Store(), Limiter())  # only the calls begin_batch makes
    deliverer = Deliverer(settings, fakes[0], None, MemoryQueue(), MemoryQueue(), limiter=fakes[1])  # type: ignore[arg-type]
    now = time.time()
    due, early = message(notBefore=now - 1), message(notBefore=now + 600)
    deliverer.begin_batch([due.as_body(), early.as_body(), message().as_body()])
    assert reserved == [("p1", 5, 2)]  # the early copy would have held a slot it cannot use
