import pytest

from webhooks.observability import MetricUnit, metrics


def test_disabled_metrics_never_print(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    @metrics.log_metrics
    def invocation(event: dict[str, str], context: object) -> None:
        metrics.add_metric(name="Delivered", unit=MetricUnit.Count, value=1)

    for _ in range(150):  # past Powertools' 100-value auto-flush
        invocation({}, None)
    assert "_aws" not in capsys.readouterr().out


def test_enabled_metrics_print_emf(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    @metrics.log_metrics
    def invocation(event: dict[str, str], context: object) -> None:
        metrics.add_metric(name="Delivered", unit=MetricUnit.Count, value=1)

    invocation({}, None)
    out = capsys.readouterr().out
    assert '"Namespace":"Webhooks"' in out and '"Delivered":[1.0]' in out


def test_rejections_are_counted_by_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from webhooks.ingest.events_api import invalid_body

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")

    @metrics.log_metrics
    def invocation(event: dict[str, str], context: object) -> None:
        invalid_body("body: bad")

    invocation({}, None)
    out = capsys.readouterr().out
    assert '"EventsRejected":[1.0]' in out and '"Rejected_invalid_body":[1.0]' in out
