"""Retry schedules (webhooks.delivery.schedule): bounds, the service default, the WEBHOOK_*
compatibility, and the waits with jitter."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from webhooks.config import SCHEDULE_BOUND_SECONDS, SQS_MAX_VISIBILITY_SECONDS, load_settings
from webhooks.delivery.backoff import retry_delay_seconds
from webhooks.delivery.flow_control import MAX_DEFER_SECONDS, VISIBILITY_STEP_SECONDS, WAIT_RECEIVES_PER_COPY
from webhooks.delivery.schedule import (
    MAX_TOTAL_SECONDS,
    MAX_WAIT_SECONDS,
    MAX_WAITS,
    STANDARD_SCHEDULE,
    NodeBackoff,
    RetrySchedule,
    service_default,
    wait_before,
)
from webhooks.ingest.json_input import format_errors
from webhooks.queues import MAX_AGE_SECONDS
from webhooks_cli.topology import QUEUES


@pytest.fixture
def no_webhook_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_MAX_ATTEMPTS", raising=False)
    monkeypatch.delenv("WEBHOOK_RETRY_DELAY", raising=False)
    monkeypatch.delenv("WEBHOOK_RETRY_SCHEDULE", raising=False)


# -- the schedule and its bounds ------------------------------------------------------------


def test_attempts_are_one_more_than_the_waits() -> None:
    schedule = RetrySchedule.model_validate([5, 60])
    assert schedule.waits == (5, 60) and schedule.attempts == 3
    assert [wait_before(schedule, attempt, 0) for attempt in (2, 3)] == [5, 60]


def test_the_bounds_themselves_are_accepted() -> None:
    assert RetrySchedule.model_validate([1]).attempts == 2
    assert RetrySchedule.model_validate([1] * MAX_WAITS).attempts == 31
    assert (
        RetrySchedule.model_validate([MAX_WAIT_SECONDS] * 4 + [2 * 86_400]).waits[-1] == 2 * 86_400
    )  # 30 days


def test_the_total_is_bounded_under_the_age_bound_that_would_cut_the_last_attempts_off() -> None:
    # 30 days of waits (the endpoints contract); a delivery is dead-lettered 35 days after
    # acceptance (queues.MAX_AGE_SECONDS), 5 days left for pauses and deferrals
    assert MAX_TOTAL_SECONDS == SCHEDULE_BOUND_SECONDS == 30 * 86_400
    assert MAX_TOTAL_SECONDS + 5 * 86_400 == MAX_AGE_SECONDS
    with pytest.raises(ValidationError, match="more than 30 days"):
        RetrySchedule.model_validate([MAX_WAIT_SECONDS] * 4 + [2 * 86_400 + 1])


@pytest.mark.parametrize(
    ("waits", "loc", "message"),
    [
        ([], (), "must list 1 to 30 waits (the attempts are one more), not 0"),
        ([1] * (MAX_WAITS + 1), (), "must list 1 to 30 waits (the attempts are one more), not 31"),
        ("5,300", (), "must be a list of waits in seconds"),
        (None, (), "must be a list of waits in seconds"),
        ([5, 0], (1,), "must be between 1 and 604800 seconds (7 days)"),
        ([5, 300, MAX_WAIT_SECONDS + 1], (2,), "must be between 1 and 604800 seconds (7 days)"),
        ([-1], (0,), "must be between 1 and 604800 seconds (7 days)"),
        ([5, True], (1,), "Input should be a valid integer"),
        ([5, "300"], (1,), "Input should be a valid integer"),
        ([5, 2.5], (1,), "Input should be a valid integer"),
        (
            [MAX_WAIT_SECONDS] * 4 + [172_801],
            (),
            "the waits add up to 2592001 seconds, more than 30 days (2592000)",
        ),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_wait(waits: Any, loc: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RetrySchedule.model_validate(waits)
    assert [(error["loc"], error["msg"]) for error in caught.value.errors()] == [(loc, message)]


def test_the_longest_wait_fits_in_the_delivery_queue_that_holds_it() -> None:
    # one copy holds a wait: received after its DelaySeconds, then hidden again up to 12 h per
    # receive (flow_control); its receives must stay under the queue's redrive, with room to
    # spare, and the wait under the queue's retention, a day to spare
    [queue] = [spec for spec in QUEUES if spec.key == "DELIVERY_QUEUE_URL"]
    # ... and a fresh copy takes the rest of the wait every WAIT_RECEIVES_PER_COPY receives
    receives = min(
        WAIT_RECEIVES_PER_COPY,
        1 + math.ceil((MAX_WAIT_SECONDS - MAX_DEFER_SECONDS) / VISIBILITY_STEP_SECONDS),
    )
    assert queue.max_receive_count is not None and receives + 2 <= queue.max_receive_count
    copy_lifetime = MAX_DEFER_SECONDS + (WAIT_RECEIVES_PER_COPY - 1) * 43_200
    assert queue.retention >= copy_lifetime + 86_400


def test_in_a_request_body_the_error_reads_with_the_field_and_index() -> None:
    class EndpointIn(BaseModel):
        retrySchedule: RetrySchedule | None = None

    assert EndpointIn.model_validate({}).retrySchedule is None
    with pytest.raises(ValidationError) as caught:
        EndpointIn.model_validate({"retrySchedule": [5, 300, 1_800, 10**9]})
    assert format_errors(caught.value) == "retrySchedule[3]: must be between 1 and 604800 seconds (7 days)"
    total = MAX_TOTAL_SECONDS // MAX_WAIT_SECONDS + 1
    with pytest.raises(ValidationError) as caught:
        EndpointIn.model_validate({"retrySchedule": [MAX_WAIT_SECONDS] * total})
    assert format_errors(caught.value).startswith("retrySchedule: the waits add up to 3024000 seconds")


def test_a_schedule_is_immutable() -> None:
    schedule = RetrySchedule.model_validate([5, 300])
    with pytest.raises(ValidationError):
        schedule.root = (1,)  # type: ignore[misc]
    assert isinstance(schedule.waits, tuple)


# -- the service default ----------------------------------------------------------------------


def test_the_standard_default_spans_about_a_day_in_waits_sqs_can_hold() -> None:
    assert STANDARD_SCHEDULE.waits == (5, 300, 1_800, 7_200, 18_000, 36_000, 36_000)
    assert STANDARD_SCHEDULE.attempts == 8
    assert 86_400 <= sum(STANDARD_SCHEDULE.waits) <= 1.5 * 86_400
    assert max(STANDARD_SCHEDULE.waits) <= SQS_MAX_VISIBILITY_SECONDS  # no chained waits


@pytest.mark.usefixtures("no_webhook_settings")
def test_without_webhook_settings_the_default_is_the_standard_schedule() -> None:
    assert service_default(load_settings()) is STANDARD_SCHEDULE


@pytest.mark.usefixtures("no_webhook_settings")
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WEBHOOK_MAX_ATTEMPTS": "5"}, NodeBackoff(5, 2500)),
        ({"WEBHOOK_RETRY_DELAY": "1000"}, NodeBackoff(3, 1000)),
        ({"WEBHOOK_MAX_ATTEMPTS": "2", "WEBHOOK_RETRY_DELAY": "1000"}, NodeBackoff(2, 1000)),
        # set to the defaults, still set: a Node drop-in keeps its 3 attempts over 7.5 s
        ({"WEBHOOK_MAX_ATTEMPTS": "3", "WEBHOOK_RETRY_DELAY": "2500"}, NodeBackoff(3, 2500)),
    ],
)
def test_either_webhook_variable_set_keeps_the_node_services_meaning(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: NodeBackoff
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert service_default(load_settings()) == expected


@pytest.mark.usefixtures("no_webhook_settings")
def test_a_settings_override_counts_as_set() -> None:
    assert service_default(load_settings(webhook_max_attempts=4)) == NodeBackoff(4, 2500)


def test_node_backoff_doubles_from_the_retry_delay() -> None:
    schedule = NodeBackoff(max_attempts=4, retry_delay_ms=2500)
    assert schedule.attempts == 4
    assert [schedule.seconds_before(attempt) for attempt in (2, 3, 4)] == [2.5, 5.0, 10.0]
    assert [wait_before(schedule, attempt, 0) for attempt in (2, 3, 4)] == [3, 5, 10]
    with pytest.raises(ValueError, match="not a retry of this schedule"):
        wait_before(schedule, 5, 0)


class _Draw(random.Random):
    """The draw today's backoff takes its jitter from, fixed."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


@pytest.mark.parametrize("delay_ms", [0, 1, 10, 500, 999, 1000, 1001, 2500, 3000, 60_000, 43_200_000])
def test_node_backoff_waits_what_todays_backoff_waits(delay_ms: int) -> None:
    # decide() passes jitter = -0.2 * rng.random() (taken off only, as the Node backoff) and a
    # Node wait is capped at SQS's limit after it: the Node backoff's waits, second for second
    draws = random.Random(delay_ms)
    schedule = NodeBackoff(12, delay_ms)
    for failed in range(1, schedule.attempts):
        for _ in range(50):
            draw = draws.random()
            today = retry_delay_seconds(failed, delay_ms, rng=_Draw(draw))
            ours = wait_before(schedule, failed + 1, -0.2 * draw)
            assert ours == today


# -- wait_before ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jitter", "seconds"), [(-0.2, 80), (-0.05, 95), (0.0, 100), (0.001, 101), (0.05, 105), (0.2, 120)]
)
def test_jitter_moves_a_wait_at_most_20_percent_either_way_rounded_up(jitter: float, seconds: int) -> None:
    assert wait_before(RetrySchedule.model_validate([100]), 2, jitter) == seconds


@pytest.mark.parametrize("jitter", [0.2000001, -0.21, 1.0, math.nan, math.inf])
def test_more_jitter_is_refused(jitter: float) -> None:
    with pytest.raises(ValueError, match=r"outside -0\.2\.\.0\.2"):
        wait_before(RetrySchedule.model_validate([100]), 2, jitter)


def test_floating_point_noise_does_not_add_a_second() -> None:
    assert 100 * (1 + 0.1) > 110  # 110.00000000000001
    assert wait_before(RetrySchedule.model_validate([100]), 2, 0.1) == 110


def test_a_wait_is_at_least_one_second() -> None:
    assert wait_before(RetrySchedule.model_validate([1]), 2, -0.2) == 1
    assert wait_before(NodeBackoff(2, 0), 2, 0) == 1
    assert wait_before(NodeBackoff(2, 100), 2, -0.2) == 1


def test_a_long_wait_is_not_capped_the_caller_chains_it() -> None:
    assert wait_before(RetrySchedule.model_validate([MAX_WAIT_SECONDS]), 2, 0.2) == 725_760


@pytest.mark.parametrize("attempt", [-1, 0, 1, 4])
def test_only_the_retries_of_a_schedule_have_a_wait(attempt: int) -> None:
    with pytest.raises(ValueError, match=r"is not a retry of this schedule \(2\.\.3\)"):
        wait_before(RetrySchedule.model_validate([5, 60]), attempt, 0)


WAITS = st.lists(st.integers(1, MAX_WAIT_SECONDS), min_size=1, max_size=4)  # 12 days at most


@given(WAITS, st.data(), st.floats(-0.2, 0.2))
def test_every_wait_is_whole_seconds_within_jitter_of_the_schedule(
    waits: list[int], data: st.DataObject, jitter: float
) -> None:
    schedule = RetrySchedule.model_validate(waits)
    attempt = data.draw(st.integers(2, schedule.attempts))
    wait = schedule.waits[attempt - 2]
    seconds = wait_before(schedule, attempt, jitter)
    assert isinstance(seconds, int) and seconds >= 1
    assert wait * 0.8 - 1 < seconds <= math.ceil(wait * 1.2)
    assert wait_before(schedule, attempt, 0) == wait
