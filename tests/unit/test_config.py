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
    # 2.5 s doubling reaches the 12 h cap by attempt 16: 70 attempts wait about 33.5 days
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "70")
    monkeypatch.setenv("WEBHOOK_RETRY_DELAY", "2500")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "WEBHOOK_MAX_ATTEMPTS=70" in str(caught.value) and "WEBHOOK_RETRY_DELAY=2500" in str(caught.value)
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "60")  # about 27.5 days: fits
    assert load_settings().webhook_max_attempts == 60


def test_the_schedule_bound_leaves_a_margin_under_the_age_bound() -> None:
    from webhooks.config import SCHEDULE_BOUND_SECONDS, longest_retry_schedule
    from webhooks.queues import MAX_AGE_SECONDS

    assert SCHEDULE_BOUND_SECONDS <= MAX_AGE_SECONDS - 5 * 86_400
    # the defaults: 2-3 s, then 4-5 s
    assert longest_retry_schedule(3, 2500) == pytest.approx(1.2 * (2.5 + 5))


# -- the retry schedule settings (delivery/schedule.py: service_default) ----------------------

RETRY_VARIABLES = ("WEBHOOK_MAX_ATTEMPTS", "WEBHOOK_RETRY_DELAY", "WEBHOOK_RETRY_SCHEDULE")


@pytest.fixture
def no_retry_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in RETRY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_retry_variables")
def test_the_default_retry_schedule_is_read_as_comma_separated_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().webhook_retry_schedule is None
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", " 5, 300,1800 ")
    assert load_settings().webhook_retry_schedule == (5, 300, 1800)


@pytest.mark.usefixtures("no_retry_variables")
@pytest.mark.parametrize("value", ["5,abc", "5,1.5", "5,-1", "5,٣"])
def test_a_retry_schedule_that_is_not_whole_seconds_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", value)
    with pytest.raises(ConfigError, match="WEBHOOK_RETRY_SCHEDULE: Value error, must be whole seconds"):
        load_settings()


@pytest.mark.usefixtures("no_retry_variables")
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5,0", "wait 2: must be between 1 and 604800 seconds (7 days)"),
        (",".join(["1"] * 31), "must list 1 to 30 waits (the attempts are one more), not 31"),
        # 35 days of waits: over the 30-day bound, as an endpoint's schedule would be
        (",".join(["604800"] * 5), "the waits add up to 3024000 seconds, more than 30 days (2592000)"),
    ],
)
def test_a_retry_schedule_out_of_bounds_is_refused_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(
        "Invalid configuration: WEBHOOK_RETRY_SCHEDULE: Value error, " + message
    )


@pytest.mark.usefixtures("no_retry_variables")
@pytest.mark.parametrize(
    "node",
    [
        {"WEBHOOK_MAX_ATTEMPTS": "3"},
        {"WEBHOOK_RETRY_DELAY": "1000"},
        {"WEBHOOK_MAX_ATTEMPTS": "2", "WEBHOOK_RETRY_DELAY": "1"},
    ],
)
def test_a_retry_schedule_with_the_node_variables_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, node: dict[str, str]
) -> None:
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "5,300")
    for name, value in node.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert f"WEBHOOK_RETRY_SCHEDULE and {' and '.join(node)} are both set" in str(caught.value)
    for name in node:
        monkeypatch.setenv(name, "")  # blank is unset: the schedule alone is accepted
    assert load_settings().webhook_retry_schedule == (5, 300)


@pytest.mark.usefixtures("no_retry_variables")
def test_blank_retry_variables_are_unset_not_bad_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    # the template passes all three, blank by default
    for name in RETRY_VARIABLES:
        monkeypatch.setenv(name, " ")
    settings = load_settings()
    assert (settings.webhook_max_attempts, settings.webhook_retry_delay) == (3, 2500)
    assert settings.webhook_retry_schedule is None
    assert not settings.model_fields_set & {
        "webhook_max_attempts",
        "webhook_retry_delay",
        "webhook_retry_schedule",
    }


@pytest.mark.usefixtures("no_retry_variables")
def test_the_age_bound_still_applies_to_the_node_variables_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "70")
    with pytest.raises(ConfigError, match="WEBHOOK_MAX_ATTEMPTS=70 with WEBHOOK_RETRY_DELAY=2500"):
        load_settings()


def test_each_variable_is_read_into_its_setting_with_text_turned_into_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKER_CONCURRENCY", "7")
    monkeypatch.setenv("ALLOW_PRIVATE_DESTINATIONS", "true")
    monkeypatch.setenv("CACHE_TTL_SECONDS", "2.5")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # aws_region's variable
    monkeypatch.setenv("ADMIN_API_KEY", "the-key")
    settings = load_settings()
    assert (settings.worker_concurrency, settings.allow_private_destinations) == (7, True)
    assert (settings.cache_ttl_seconds, settings.aws_region) == (2.5, "eu-west-1")
    assert settings.admin_api_key is not None and settings.admin_api_key.get_secret_value() == "the-key"


def test_variable_names_match_whatever_their_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATCH_SIZE", raising=False)
    monkeypatch.setenv("batch_size", "42")
    assert load_settings().batch_size == 42


def test_an_override_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCH_SIZE", "42")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    settings = load_settings(batch_size=7, aws_region="ap-south-1")
    assert (settings.batch_size, settings.aws_region) == (7, "ap-south-1")


def test_variables_that_are_not_settings_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    assert not hasattr(load_settings(), "something_else")


@pytest.mark.parametrize("value", ["notaurl", "127.0.0.1:4566", "ftp://x", "http://", "http://x:abc"])
def test_an_endpoint_url_that_is_not_one_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", value)
    with pytest.raises(ConfigError, match=r"AWS_ENDPOINT_URL: .*must be an http"):
        load_settings()


def test_an_endpoint_url_is_taken_without_surrounding_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", " http://127.0.0.1:4566 ")
    assert load_settings().aws_endpoint_url == "http://127.0.0.1:4566"
