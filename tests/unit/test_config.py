import pytest

from webhooks.config import ConfigError, load_settings


def test_defaults_match_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "WEBHOOK_MAX_ATTEMPTS",
        "WEBHOOK_RETRY_DELAY",
        "WEBHOOK_TIMEOUT",
        "WORKER_CONCURRENCY",
        "BATCH_SIZE",
        "PORT",
        "MONGO_DB_NAME",
        "ALLOW_PRIVATE_DESTINATIONS",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert (settings.webhook_max_attempts, settings.webhook_retry_delay, settings.webhook_timeout) == (
        3,
        2500,
        5000,
    )
    assert (settings.worker_concurrency, settings.batch_size, settings.port) == (5, 100, 3000)
    assert settings.mongo_db_name == "recart_webhook_db"
    assert settings.allow_private_destinations is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEBHOOK_MAX_ATTEMPTS", "0"),
        ("WEBHOOK_TIMEOUT", "abc"),
        ("WEBHOOK_RETRY_DELAY", "-5"),
        ("WORKER_CONCURRENCY", "0"),
        ("BATCH_SIZE", "many"),
        ("PORT", "70000"),
        ("ALLOW_PRIVATE_DESTINATIONS", "perhaps"),
        ("MAX_MESSAGE_BYTES", "2000000"),
    ],
)
def test_a_bad_value_names_its_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert name in str(caught.value)
    assert repr(value) in str(caught.value)


def test_every_bad_variable_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "0")
    monkeypatch.setenv("WEBHOOK_TIMEOUT", "abc")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "WEBHOOK_MAX_ATTEMPTS" in str(caught.value) and "WEBHOOK_TIMEOUT" in str(caught.value)


def test_require_names_the_missing_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENTS_QUEUE_URL", raising=False)
    monkeypatch.setenv("MONGO_URI", " ")
    settings = load_settings()
    with pytest.raises(ConfigError, match="MONGO_URI, EVENTS_QUEUE_URL"):
        settings.require("mongo_uri", "events_queue_url")


def test_a_function_fails_at_start_with_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from webhooks_cli.lambdas import FUNCTIONS_DIR

    env = {"PATH": "/usr/bin:/bin", "WEBHOOK_TIMEOUT": "abc", "MONGO_URI": "mongodb://127.0.0.1:1"}
    result = subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=FUNCTIONS_DIR / "deliver",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ConfigError: Invalid configuration: WEBHOOK_TIMEOUT" in result.stderr


def test_a_retry_schedule_longer_than_the_age_bound_is_refused_at_start_naming_both_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 2.5 s doubling reaches the 12 h cap by attempt 16: 40 attempts wait about 15 days
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "40")
    monkeypatch.setenv("WEBHOOK_RETRY_DELAY", "2500")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "WEBHOOK_MAX_ATTEMPTS=40" in str(caught.value) and "WEBHOOK_RETRY_DELAY=2500" in str(caught.value)
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "30")  # about 9.5 days: fits
    assert load_settings().webhook_max_attempts == 30


def test_the_schedule_bound_leaves_a_margin_under_the_age_bound() -> None:
    from webhooks.config import SCHEDULE_BOUND_SECONDS, longest_retry_schedule
    from webhooks.queues import MAX_AGE_SECONDS

    assert SCHEDULE_BOUND_SECONDS <= MAX_AGE_SECONDS - 86_400
    # the defaults: 2-3 s, then 4-5 s
    assert longest_retry_schedule(3, 2500) == pytest.approx(1.2 * (2.5 + 5))
