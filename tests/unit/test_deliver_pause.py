"""How long an endpoint that asked to slow down is paused: what it asked for, else a short
fixed pause, never one delivery's backoff; and only that endpoint. A store that records the
pause, nothing else."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from webhooks.config import load_settings
from webhooks.delivery.deliverer import Deliverer
from webhooks.delivery.http import HttpResult
from webhooks.delivery.policy import Attempt


class PauseStore:
    def __init__(self) -> None:
        self.paused: list[tuple[str, float]] = []

    def pause(self, endpoint: Any, until: datetime) -> None:
        self.paused.append((endpoint.id, (until - datetime.now(UTC)).total_seconds()))


def paused_for(result: HttpResult, attempt: Attempt) -> float:
    settings = load_settings(webhook_retry_delay=2500, retry_after_max_seconds=3600)
    store = PauseStore()
    deliverer = Deliverer(settings, store, None, None, None, rng=random.Random(1))  # type: ignore[arg-type]
    endpoint = SimpleNamespace(id="ep_2", partner_id="p1")  # only its ids are read
    deliverer._pause(endpoint, result, attempt)  # type: ignore[arg-type]
    [(endpoint_id, seconds)] = store.paused
    assert endpoint_id == "ep_2"  # the endpoint that asked, not its partner
    return seconds


# attempt 16 of a 2.5 s doubling schedule waits the 12 h cap
LATE_RETRY = Attempt("retry", 16, 429, "HTTP 429", delay_seconds=43_200)


def test_a_429_without_retry_after_pauses_the_partner_briefly_not_for_the_deliverys_backoff() -> None:
    assert paused_for(HttpResult(429, 1.0, "HTTP 429"), LATE_RETRY) == pytest.approx(2.5, abs=0.5)


def test_a_429_with_retry_after_pauses_the_partner_for_what_it_asked_up_to_the_cap() -> None:
    assert paused_for(HttpResult(429, 1.0, "HTTP 429", retry_after="30"), LATE_RETRY) == pytest.approx(
        30, abs=1
    )
    capped = paused_for(HttpResult(429, 1.0, "HTTP 429", retry_after="99999"), LATE_RETRY)
    assert capped == pytest.approx(3600, abs=1)
