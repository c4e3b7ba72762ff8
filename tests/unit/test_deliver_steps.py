"""The deliver path's decisions, each a plain function: no queue, no database, no receiver."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from webhooks.config import Settings, load_settings
from webhooks.delivery.deliverer import SETTLE_SECONDS, fits_before
from webhooks.delivery.http import HttpResult
from webhooks.delivery.policy import admission, asks_to_slow_down, decide
from webhooks.partners.model import Partner

PARTNER = Partner("p1", "Acme", "https://acme.example/h", True, "whsec_x")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("WEBHOOK_RETRY_DELAY", "1000")
    monkeypatch.setenv("RETRY_AFTER_MAX_SECONDS", "60")
    return load_settings()


def test_admission_drops_missing_and_inactive_partners_and_parks_disabled_endpoints() -> None:
    assert admission(None) == "drop"
    assert admission(replace(PARTNER, is_active=False)) == "drop"
    disabled = replace(PARTNER, disabled_at=datetime.now(UTC))
    assert admission(disabled) == "park"
    assert admission(replace(disabled, is_active=False)) == "drop"  # inactive wins: nothing to keep
    assert admission(PARTNER) == "go"


def test_a_post_starts_only_if_it_and_the_settling_fit_before_the_deadline() -> None:
    assert fits_before(None, 30, now=0)  # no deadline
    assert fits_before(100.0, 10, now=100.0 - 10 - SETTLE_SECONDS)
    assert not fits_before(100.0, 10, now=100.0 - 10 - SETTLE_SECONDS + 0.01)


def test_2xx_is_delivered_410_and_the_last_attempt_are_dead_letters(settings: Settings) -> None:
    rng = random.Random(1)
    assert decide(HttpResult(204, 5.0), 1, settings, rng).outcome == "delivered"
    gone = decide(HttpResult(410, 5.0, "HTTP 410"), 1, settings, rng)
    assert (gone.outcome, gone.delay_seconds) == ("dead_lettered", None)
    assert decide(HttpResult(500, 5.0), 3, settings, rng).outcome == "dead_lettered"
    assert decide(HttpResult(None, 5.0, "timeout"), 3, settings, rng).outcome == "dead_lettered"


def test_other_failures_retry_after_an_exponential_backoff(settings: Settings) -> None:
    rng = random.Random(1)
    first = decide(HttpResult(500, 5.0), 1, settings, rng)
    second = decide(HttpResult(None, 5.0, "connection refused"), 2, settings, rng)
    assert (first.outcome, second.outcome) == ("retry", "retry")
    assert first.delay_seconds == 1 and second.delay_seconds == 2  # 1 s, 2 s (jitter only shortens)


def test_retry_after_lengthens_the_backoff_up_to_its_cap_only_on_429_and_503(settings: Settings) -> None:
    rng = random.Random(1)
    assert decide(HttpResult(429, 5.0, retry_after="30"), 1, settings, rng).delay_seconds == 30
    assert decide(HttpResult(503, 5.0, retry_after="9999"), 1, settings, rng).delay_seconds == 60
    assert decide(HttpResult(500, 5.0, retry_after="30"), 1, settings, rng).delay_seconds == 1


def test_a_429_or_a_503_with_retry_after_pauses_the_partner() -> None:
    assert asks_to_slow_down(HttpResult(429, 1.0))
    assert asks_to_slow_down(HttpResult(503, 1.0, retry_after="5"))
    assert not asks_to_slow_down(HttpResult(503, 1.0))
    assert not asks_to_slow_down(HttpResult(500, 1.0, retry_after="5"))
    assert not asks_to_slow_down(HttpResult(200, 1.0))
