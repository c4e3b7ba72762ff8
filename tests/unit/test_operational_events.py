"""Per-endpoint decisions and the operational events, one module at a time: the warning half
way to the disable rule (once per streak), what the events say and to whom, the reserved
namespace, and the keys that keep a first endpoint's counters and parked deliveries as they
were. In-memory stores and queues."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.delivery.health import Disabled, DisablePolicy, EndpointHealth, Failing
from webhooks.delivery.operational_events import (
    EVENTS_PER_ENVELOPE,
    exhausted_event,
    health_event,
    publish,
    publish_operational,
)
from webhooks.delivery.parked import parked_key
from webhooks.delivery.rate_limit import limiter_key
from webhooks.endpoints.model import Endpoint, first_endpoint_id
from webhooks.models import DeliveryMessage, Event, new_event_id, utc_timestamp
from webhooks.partners.subscriptions import is_reserved, recipients, subscription_matches

START = datetime(2026, 1, 1, tzinfo=UTC)


def endpoint(endpoint_id: str = "ep_2", partner_id: str = "p1") -> Endpoint:
    first = endpoint_id == first_endpoint_id(partner_id)
    return Endpoint(endpoint_id, partner_id, "Acme", True, "https://acme.example/h", "whsec_x", first)


class Streaks:
    """EndpointStore's health writes, in memory: one streak per endpoint id."""

    def __init__(self) -> None:
        self.stored: dict[str, Endpoint] = {}
        self.disabled: list[str] = []

    def add_failures(
        self, ep: Endpoint, count: int, first_failure: datetime, *, restart: bool = False
    ) -> Endpoint:
        now = self.stored.get(ep.id, ep)
        if restart or not now.consecutive_failures:
            now = replace(now, consecutive_failures=count, failing_since=first_failure)
        else:
            now = replace(now, consecutive_failures=now.consecutive_failures + count)
        self.stored[ep.id] = now
        return now

    def reset_failures(self, ep: Endpoint) -> None:
        self.stored[ep.id] = replace(self.stored.get(ep.id, ep), consecutive_failures=0, failing_since=None)

    def disable(self, ep: Endpoint, reason: str) -> bool:
        self.disabled.append(ep.id)
        return True


def flush(health: EndpointHealth, outcomes: list[tuple[Endpoint, bool]]) -> list[Disabled | Failing]:
    batch: dict[str, Any] = {}
    for ep, ok in outcomes:
        health.record(ep, ok, None if ok else "HTTP 500", into=batch)
    return health.flush(batch)


def test_half_the_disable_count_rounded_up_is_when_an_endpoint_is_failing() -> None:
    assert [DisablePolicy(n, 0).warn_at for n in (0, 1, 2, 3, 10, 11)] == [0, 1, 1, 2, 5, 6]


def test_endpoint_failing_is_reported_once_per_streak_when_it_reaches_half_the_rule() -> None:
    streaks = Streaks()
    health = EndpointHealth(streaks, DisablePolicy(failures=10, seconds=3600), clock=lambda: START)  # type: ignore[arg-type]
    ep = endpoint()
    assert flush(health, [(ep, False)] * 3) == []  # 3 of the 5 it takes
    [failing] = flush(health, [(ep, False)] * 3)  # 6: across 5 in this write
    assert failing == Failing("p1", "ep_2", 6, START, "HTTP 500")
    assert flush(health, [(ep, False)] * 3) == []  # 9: the same streak, not again
    assert streaks.disabled == []  # 10 attempts *and* an hour: not yet

    flush(health, [(ep, True)])  # a success ends the streak
    assert streaks.stored["ep_2"].consecutive_failures == 0
    assert flush(health, [(ep, False)] * 4) == []
    assert [type(n) for n in flush(health, [(ep, False)])] == [Failing]  # a new streak: told again


def test_a_streak_restarted_after_a_success_in_the_same_invocation_counts_from_its_first_failure() -> None:
    streaks = Streaks()
    health = EndpointHealth(streaks, DisablePolicy(failures=4, seconds=3600), clock=lambda: START)  # type: ignore[arg-type]
    ep = endpoint()
    flush(health, [(ep, False)])
    # failed, succeeded, then two failures: a streak of 2 (half of 4), begun after the success
    [failing] = flush(health, [(ep, False), (ep, True), (ep, False), (ep, False)])
    assert failing.consecutive_failures == 2


def test_no_endpoint_failing_when_the_disable_rule_is_off() -> None:
    health = EndpointHealth(Streaks(), DisablePolicy(failures=0, seconds=0), clock=lambda: START)  # type: ignore[arg-type]
    assert flush(health, [(endpoint(), False)] * 50) == []


def test_one_endpoints_failures_never_count_against_another_of_the_same_partner() -> None:
    streaks = Streaks()
    health = EndpointHealth(streaks, DisablePolicy(failures=2, seconds=0), clock=lambda: START)  # type: ignore[arg-type]
    first, second = endpoint("ep_p1"), endpoint("ep_2")
    notices = flush(health, [(first, True), (second, False), (second, False)])
    assert streaks.disabled == ["ep_2"]
    assert [(type(n).__name__, n.endpoint_id) for n in notices] == [("Failing", "ep_2"), ("Disabled", "ep_2")]
    assert "ep_p1" not in streaks.stored  # a healthy endpoint costs no write


def event_of(event_type: str) -> Event:
    return Event(eventId=new_event_id(), eventType=event_type, timestamp=utc_timestamp(), data={"n": 1})


def test_an_exhausted_delivery_says_which_event_partner_and_endpoint_and_how_it_ended() -> None:
    message = DeliveryMessage(partnerId="p1", endpointId="ep_2", event=event_of("order.created"))
    announced = exhausted_event(message, "ep_2", 3, 500)
    assert announced is not None and announced.eventType == "message.attempt.exhausted"
    assert announced.data == {
        "eventId": message.event.eventId,
        "eventType": "order.created",
        "partnerId": "p1",
        "endpointId": "ep_2",
        "attempts": 3,
        "lastStatus": 500,
    }


@pytest.mark.parametrize(
    "event_type", ["message.attempt.exhausted", "endpoint.failing", "endpoint.disabled", "webhook.test"]
)
def test_an_operational_events_own_failed_delivery_is_never_announced(event_type: str) -> None:
    message = DeliveryMessage(partnerId="p1", event=event_of(event_type))
    assert exhausted_event(message, "ep_p1", 3, 500) is None


def test_endpoint_disabled_names_its_endpoint_the_first_when_none_is_given() -> None:
    event = health_event(Disabled("p1", "Acme", 3, START, START, "3 failed"))
    assert event.eventType == "endpoint.disabled" and event.data["endpointId"] == "ep_p1"
    failing = health_event(Failing("p1", "ep_2", 5, START, "HTTP 500"))
    assert failing.eventType == "endpoint.failing"
    assert failing.data == {
        "partnerId": "p1",
        "endpointId": "ep_2",
        "consecutiveFailures": 5,
        "failingSince": "2026-01-01T00:00:00.000Z",
        "lastError": "HTTP 500",
    }


class MemoryQueue:
    def __init__(self) -> None:
        self.bodies: list[str] = []

    def send(self, body: str, attributes: Mapping[str, object] | None = None, delay_seconds: int = 0) -> str:
        self.bodies.append(body)
        return "id"


def test_publish_operational_sends_one_platform_envelope_about_the_partner_it_names() -> None:
    queue = MemoryQueue()
    publish_operational("endpoint.enabled", {"partnerId": "p1", "endpointId": "ep_2"}, queue)  # type: ignore[arg-type]
    [body] = queue.bodies
    envelope = json.loads(body)
    assert envelope["source"] == "webhooks"
    [event] = envelope["events"]
    assert event["eventType"] == "endpoint.enabled"
    assert event["data"] == {"partnerId": "p1", "endpointId": "ep_2"}


def test_publish_operational_refuses_a_producer_type_or_an_event_about_nobody() -> None:
    queue = MemoryQueue()
    with pytest.raises(ValueError, match="reserved"):
        publish_operational("order.created", {"partnerId": "p1"}, queue)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="partnerId"):
        publish_operational("endpoint.secret.rotated", {"endpointId": "ep_2"}, queue)  # type: ignore[arg-type]
    assert queue.bodies == []


def test_an_invocations_events_go_out_in_as_few_envelopes_as_the_limit_allows() -> None:
    queue = MemoryQueue()
    events = [
        health_event(Failing(f"p{n}", f"ep_{n}", 5, START, "x")) for n in range(EVENTS_PER_ENVELOPE + 1)
    ]
    publish(events, queue)  # type: ignore[arg-type]
    assert [len(json.loads(b)["events"]) for b in queue.bodies] == [EVENTS_PER_ENVELOPE, 1]


def test_message_attempt_events_are_reserved_and_matched_only_inside_their_namespace() -> None:
    assert is_reserved("message.attempt.exhausted") and not is_reserved("message.sent")
    for pattern in ("message.attempt.exhausted", "message.attempt.*"):
        assert subscription_matches(pattern, "message.attempt.exhausted")
    for pattern in ("message.*", "*"):
        assert not subscription_matches(pattern, "message.attempt.exhausted")
    assert subscription_matches("message.*", "message.sent")  # producers keep the rest of message.
    data = {"partnerId": "p1"}
    assert recipients("message.attempt.exhausted", data, ["p2", "p1", "p3"]) == ["p1"]


def test_a_first_endpoint_keeps_its_partners_rate_counter_and_parked_key() -> None:
    first, other = endpoint("ep_p1"), endpoint("ep_2")
    assert limiter_key(first) == "p1" and limiter_key(other) == "ep_2"
    assert parked_key("p1", None, "e1") == parked_key("p1", "ep_p1", "e1") == "p1:e1"
    assert parked_key("p1", "ep_2", "e1") == "p1:ep_2:e1"


def test_an_endpoints_failing_since_is_the_first_failure_of_the_streak() -> None:
    streaks = Streaks()
    times = iter([START, START + timedelta(seconds=1), START + timedelta(seconds=2)])
    health = EndpointHealth(streaks, DisablePolicy(failures=4, seconds=3600), clock=lambda: next(times))  # type: ignore[arg-type]
    [failing] = flush(health, [(endpoint(), False), (endpoint(), False)])
    assert failing.failing_since == START
