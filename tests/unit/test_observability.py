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


def _tracer_in_a_fresh_process(env: dict[str, str]) -> dict[str, object]:
    """What ``webhooks.observability`` builds for this environment, in a new interpreter."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json, sys; from webhooks import observability as o; "
        "print(json.dumps({'kind': type(o.tracer).__name__, 'disabled': bool(o.tracer.disabled), "
        "'xray_loaded': 'aws_xray_sdk' in sys.modules}))"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED")}
    out = subprocess.run(
        [sys.executable, "-c", script], env={**base, **env}, capture_output=True, text=True, check=True
    )
    found: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return found


def test_tracing_off_on_lambda_never_loads_the_xray_sdk() -> None:
    found = _tracer_in_a_fresh_process({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"})
    assert found == {"kind": "Untraced", "disabled": True, "xray_loaded": False}


def test_outside_lambda_the_tracer_never_loads_the_xray_sdk() -> None:
    found = _tracer_in_a_fresh_process({})
    assert found == {"kind": "Untraced", "disabled": True, "xray_loaded": False}


def test_tracing_on_lambda_is_powertools_tracer_with_xray() -> None:
    found = _tracer_in_a_fresh_process(
        {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}
    )
    assert found == {"kind": "Tracer", "disabled": False, "xray_loaded": True}


def test_untraced_leaves_handlers_and_methods_as_they_are() -> None:
    from webhooks.observability import Untraced

    def handler(event: dict[str, str], context: object) -> str:
        return "answer"

    tracer = Untraced()
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_method(capture_response=False)(handler) is handler
    assert tracer.capture_method(handler) is handler
    tracer.put_annotation("event_id", "evt_1")  # records nothing, raises nothing
    assert handler({}, None) == "answer"
