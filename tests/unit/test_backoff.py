import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from webhooks.delivery.backoff import parse_retry_after, retry_delay_seconds


@pytest.mark.parametrize(("attempt", "exact"), [(1, 1), (2, 2), (3, 4), (4, 8), (10, 512)])
def test_schedule_doubles_and_jitter_only_takes_off_up_to_20_percent(attempt: int, exact: int) -> None:
    rng = random.Random(7)
    seen = {retry_delay_seconds(attempt, 1000, rng=rng) for _ in range(300)}
    assert min(seen) >= int(exact * 0.8) and max(seen) == exact
    if exact <= 2:
        assert seen == {exact}  # short test schedules land exactly on their seconds


def test_default_schedule_with_jitter_stays_within_twenty_percent_rounded_up() -> None:
    rng = random.Random(1)
    for attempt in (1, 2, 3, 4):
        exact = 2.5 * 2 ** (attempt - 1)
        seen = {retry_delay_seconds(attempt, 2500, rng=rng) for _ in range(500)}
        assert min(seen) >= int(exact * 0.8)
        assert max(seen) <= -(-exact // 1)
        if exact >= 10:
            assert len(seen) > 1  # jitter really spreads retries


def test_delay_is_at_least_one_second_and_at_most_the_sqs_maximum() -> None:
    assert retry_delay_seconds(1, 0) == 1
    assert retry_delay_seconds(1, 10) == 1
    assert retry_delay_seconds(40, 2500) == 43_200


def test_retry_after_lengthens_within_limits_never_shortens() -> None:
    rng = random.Random(3)
    assert retry_delay_seconds(1, 1000, retry_after=30, rng=rng) == 30
    assert retry_delay_seconds(4, 1000, retry_after=2, rng=rng) == 8
    assert retry_delay_seconds(1, 1000, retry_after=10**9, retry_after_max=3600, rng=rng) == 3600


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        retry_delay_seconds(0, 1000)


def test_parse_retry_after_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    "value", ["\xb2", "\u0663", "1\xb2", "+5", "5.5", "-1", "Wed, 21 Oct 99999 07:28:00 GMT"]
)
def test_retry_after_is_ascii_digits_or_an_http_date_anything_else_is_ignored(value: str) -> None:
    # "\xb2" (Latin-1 "²") and "\u0663" (Arabic-Indic 3) pass str.isdigit() but not float()
    assert parse_retry_after(value) is None


def test_retry_after_lengthens_any_wait_up_to_its_cap_and_never_shortens_it() -> None:
    from webhooks.delivery.backoff import lengthened_by_retry_after

    assert lengthened_by_retry_after(5, 30.2, 60) == 31
    assert lengthened_by_retry_after(5, 9_999, 60) == 60
    assert lengthened_by_retry_after(259_200, 30, 60) == 259_200  # a days-long wait stands
    assert lengthened_by_retry_after(5, None, 60) == lengthened_by_retry_after(5, 0, 60) == 5
