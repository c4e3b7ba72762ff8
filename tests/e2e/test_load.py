"""A short, bounded load run through `webhooks local` with one partner failing: nothing lost.

The long form is bench/bench_load.py (figures in docs/RELIABILITY.md).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench_partners import LOAD_SUBSCRIPTIONS
from loadrun import run_standard_load
from support import CountingReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture
def receivers() -> Iterator[dict[str, CountingReceiver]]:
    made = {name: CountingReceiver(status=500 if name == "failing" else 200) for name in LOAD_SUBSCRIPTIONS}
    yield made
    for receiver in made.values():
        receiver.close()


def test_short_load_with_a_failing_partner_loses_nothing(receivers: dict[str, CountingReceiver]) -> None:
    env = {"WEBHOOK_RETRY_DELAY": "1000", "WEBHOOK_MAX_ATTEMPTS": "2"}
    result = run_standard_load(receivers, env, rate=20, seconds=5, settle_timeout=30)
    report = result.report
    # every request accepted, and enough of them to be a load (how fast: bench/bench_load.py)
    assert result.statuses == {202: report.accepted} and report.accepted >= 50
    assert report.ok, (str(report), report.lost[:5], report.unexpected[:5])
    assert report.lost == [] and report.unexpected == [] and report.duplicates == 0
    failing_owed = sum(1 for owed in result.ledger.owed.values() if "failing" in owed)
    assert report.dead_lettered == failing_owed > 0  # every delivery to the failing partner is in the DLQ
    assert result.failed_attempts == 2 * failing_owed  # WEBHOOK_MAX_ATTEMPTS=2 each, no more
    assert report.delivered == report.expected - report.dead_lettered
