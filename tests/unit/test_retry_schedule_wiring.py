"""Retry schedules wired into the delivery decision (webhooks.delivery.policy): an endpoint's
own waits, else the service default (WEBHOOK_RETRY_SCHEDULE, the standard day-long schedule,
or the Node service's doubling when WEBHOOK_MAX_ATTEMPTS / WEBHOOK_RETRY_DELAY are set)."""

from __future__ import annotations

import math
import random

import pytest

from webhooks.config import SQS_MAX_VISIBILITY_SECONDS, Settings, load_settings
from webhooks.delivery.http import HttpResult
from webhooks.delivery.policy import decide, fallback_decision
from webhooks.delivery.schedule import STANDARD_SCHEDULE, NodeBackoff, RetrySchedule, service_default

FAILED = HttpResult(500, 5.0, "HTTP 500")
WAITS = (5, 300, 1_800)


@pytest.fixture
def standard(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """No retry variable set: the standard schedule is the service default."""
    for name in ("WEBHOOK_MAX_ATTEMPTS", "WEBHOOK_RETRY_DELAY", "WEBHOOK_RETRY_SCHEDULE"):
        monkeypatch.delenv(name, raising=False)
    return load_settings(retry_after_max_seconds=60)


def outcomes(settings: Settings, schedule: tuple[int, ...] | None, attempts: int) -> list[str]:
    rng = random.Random(7)
    return [decide(FAILED, n, settings, rng, schedule).outcome for n in range(1, attempts + 1)]


def test_an_endpoint_schedule_gives_its_length_plus_one_attempts(standard: Settings) -> None:
    assert outcomes(standard, WAITS, 4) == ["retry", "retry", "retry", "dead_lettered"]
    assert outcomes(standard, (60,), 2) == ["retry", "dead_lettered"]
    gone = decide(HttpResult(410, 5.0, "HTTP 410"), 1, standard, random.Random(1), WAITS)
    assert gone.outcome == "dead_lettered"  # a 410 at once, whatever the schedule


def test_an_endpoint_schedule_wins_over_the_node_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load_settings(webhook_max_attempts=2, webhook_retry_delay=1000)
    assert outcomes(settings, None, 2) == ["retry", "dead_lettered"]
    assert outcomes(settings, WAITS, 4) == ["retry", "retry", "retry", "dead_lettered"]


def test_each_wait_is_the_schedules_less_at_most_20_percent_rounded_up(standard: Settings) -> None:
    rng = random.Random(3)
    for number, wait in enumerate(WAITS, 1):
        seen = {decide(FAILED, number, standard, rng, WAITS).delay_seconds for _ in range(300)}
        assert seen <= set(range(math.ceil(wait * 0.8), wait + 1))
        # jittered, not one wait for every delivery (5 s less 20% rounds up to 5 s)
        assert len(seen) > 1 or wait == 5


def test_retry_after_lengthens_a_schedules_wait_up_to_its_cap_never_shortens_it(standard: Settings) -> None:
    rng = random.Random(1)
    assert decide(HttpResult(429, 5.0, retry_after="30"), 1, standard, rng, WAITS).delay_seconds == 30
    assert decide(HttpResult(503, 5.0, retry_after="9999"), 1, standard, rng, WAITS).delay_seconds == 60
    shorter = decide(HttpResult(429, 5.0, retry_after="30"), 2, standard, rng, WAITS).delay_seconds
    assert shorter is not None and 240 <= shorter <= 300  # the schedule's 300 s stands
    assert decide(HttpResult(500, 5.0, retry_after="30"), 1, standard, rng, WAITS).delay_seconds == 5


def test_an_endpoint_wait_beyond_sqs_visibility_is_not_capped_the_deliverer_chains_it(
    standard: Settings,
) -> None:
    days = decide(FAILED, 1, standard, random.Random(1), (259_200,)).delay_seconds
    assert days is not None and days > SQS_MAX_VISIBILITY_SECONDS


def test_without_settings_or_endpoint_schedule_the_standard_day_long_schedule_applies(
    standard: Settings,
) -> None:
    assert service_default(standard) is STANDARD_SCHEDULE
    assert outcomes(standard, None, 8) == ["retry"] * 7 + ["dead_lettered"]
    waits = [fallback_decision(FAILED, n, standard).delay_seconds for n in range(1, 8)]
    assert tuple(waits) == STANDARD_SCHEDULE.waits


@pytest.mark.usefixtures("standard")
def test_the_node_variables_set_keep_their_meaning_and_its_12_hour_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("WEBHOOK_RETRY_DELAY", "1000")
    settings = load_settings()
    assert service_default(settings) == NodeBackoff(3, 1000)
    assert outcomes(settings, None, 3) == ["retry", "retry", "dead_lettered"]
    assert [fallback_decision(FAILED, n, settings).delay_seconds for n in (1, 2)] == [1, 2]
    long = load_settings(webhook_max_attempts=20)  # 2.5 s doubling reaches 12 h by attempt 16
    assert decide(FAILED, 19, long, random.Random(1)).delay_seconds == SQS_MAX_VISIBILITY_SECONDS


@pytest.mark.usefixtures("standard")
def test_webhook_retry_schedule_is_the_service_default_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "2,4")
    settings = load_settings()
    assert service_default(settings) == RetrySchedule((2, 4))
    assert service_default(settings) is service_default(load_settings())  # cached
    assert outcomes(settings, None, 3) == ["retry", "retry", "dead_lettered"]
    assert [fallback_decision(FAILED, n, settings).delay_seconds for n in (1, 2)] == [2, 4]


def test_fallback_follows_the_endpoint_schedule_without_jitter(standard: Settings) -> None:
    assert [fallback_decision(FAILED, n, standard, WAITS).delay_seconds for n in (1, 2, 3)] == list(WAITS)
    assert fallback_decision(FAILED, 4, standard, WAITS).outcome == "dead_lettered"
    assert fallback_decision(HttpResult(410, 1.0), 1, standard, WAITS).outcome == "dead_lettered"
