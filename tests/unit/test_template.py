"""The SAM template checked against the code: handlers, env vars, event sources, queue settings."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from webhooks.config import Settings
from webhooks_cli.topology import FUNCTION_TIMEOUTS, QUEUES

from support import CfnLoader

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
TOOLS = ROOT / ".venv-tools" / "bin"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


FUNCTIONS = {"IngestFunction": "ingest", "DispatchFunction": "dispatch", "DeliverFunction": "deliver"}
QUEUE_RESOURCES = {
    "EVENTS_QUEUE_URL": "EventsQueue",
    "EVENTS_DLQ_URL": "EventsDLQ",
    "DELIVERY_QUEUE_URL": "DeliveryQueue",
    "DELIVERY_DLQ_URL": "DeliveryDLQ",
}


def function_env(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    env = dict(template["Globals"]["Function"]["Environment"]["Variables"])
    env.update(template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {}))
    return env


def test_each_function_code_uri_and_handler_exist_and_import(template: dict[str, Any]) -> None:
    for logical_id, name in FUNCTIONS.items():
        props = template["Resources"][logical_id]["Properties"]
        code = (TEMPLATE.parent / props["CodeUri"]).resolve()
        assert code == ROOT / "functions" / name
        module, attr = props["Handler"].split(".")
        source = (code / f"{module}.py").read_text()
        assert f"def {attr}(" in source
        # the module imports (without running its start-up) from the layer the template names
        compile(source, str(code / f"{module}.py"), "exec")
    layer = template["Resources"]["CommonLayer"]["Properties"]
    assert (TEMPLATE.parent / layer["ContentUri"]).resolve() == ROOT / "layers" / "common"
    assert (ROOT / "layers" / "common" / "requirements.txt").exists()
    assert importlib.import_module("webhooks").__file__.startswith(str(ROOT / "layers" / "common"))
    runtime = template["Globals"]["Function"]["Runtime"]
    assert re.fullmatch(r"python3\.(1[2-9])", runtime)


def test_every_variable_a_function_requires_is_set_for_it(template: dict[str, Any]) -> None:
    for logical_id, name in FUNCTIONS.items():
        source = (ROOT / "functions" / name / "app.py").read_text()
        required = re.search(r"settings\.require\(([^)]*)\)", source)
        assert required, name
        names = [n.strip().strip("\"'").upper() for n in required.group(1).split(",") if n.strip()]
        env = function_env(template, logical_id)
        for var in names:
            assert var in env, f"{logical_id} lacks {var}"
            if var in QUEUE_RESOURCES:
                assert env[var] == {"Ref": QUEUE_RESOURCES[var]}
        assert "MONGO_URI_PARAMETER" in env and "MONGO_URI" not in env  # never a plain value
        for var in env:
            field = var.lower()
            assert field in Settings.model_fields or var.startswith("POWERTOOLS_"), f"unknown variable {var}"


def test_sqs_event_sources_report_batch_item_failures(template: dict[str, Any]) -> None:
    sources = {}
    for logical_id in ("DispatchFunction", "DeliverFunction"):
        for event in template["Resources"][logical_id]["Properties"]["Events"].values():
            assert event["Type"] == "SQS"
            assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            assert "MaximumConcurrency" in event["Properties"]["ScalingConfig"]
            sources[logical_id] = event["Properties"]["Queue"]["Fn::GetAtt"][0]
    assert sources == {"DispatchFunction": "EventsQueue", "DeliverFunction": "DeliveryQueue"}


def test_queue_settings_fit_the_functions_and_match_the_local_runtime(template: dict[str, Any]) -> None:
    queues = template["Resources"]
    consumers = {"EventsQueue": "DispatchFunction", "DeliveryQueue": "DeliverFunction"}
    for queue, consumer in consumers.items():
        timeout = queues[consumer]["Properties"]["Timeout"]
        assert queues[queue]["Properties"]["VisibilityTimeout"] >= 6 * timeout
    max_attempts = template["Parameters"]["WebhookMaxAttempts"]
    receive_count = queues["DeliveryQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    assert receive_count > max_attempts["Default"] and receive_count > max_attempts["MaxValue"]
    for logical_id, name in FUNCTIONS.items():
        assert queues[logical_id]["Properties"]["Timeout"] == FUNCTION_TIMEOUTS[name]
    # one source of truth: the local runtime creates its queues with the template's values
    for spec in QUEUES:
        props = queues[QUEUE_RESOURCES[spec.key]]["Properties"]
        assert props["MessageRetentionPeriod"] == spec.retention
        assert props.get("VisibilityTimeout", 30) == spec.visibility_timeout
        assert props.get("RedrivePolicy", {}).get("maxReceiveCount") == spec.max_receive_count
        assert props["SqsManagedSseEnabled"] is True
    for dlq in ("EventsDLQ", "DeliveryDLQ"):
        assert queues[dlq]["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_iam_is_least_privilege_on_exact_queues(template: dict[str, Any]) -> None:
    for logical_id in FUNCTIONS:
        role = template["Resources"][template["Resources"][logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]]
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                targets = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                assert "*" not in str(targets)
                assert all(a.startswith(("sqs:", "ssm:GetParameter")) for a in statement["Action"])


def test_parameters_cover_every_webhook_setting_with_the_seed_defaults(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert {
        k: params[k]["Default"]
        for k in (
            "WebhookMaxAttempts",
            "WebhookRetryDelay",
            "WebhookTimeout",
            "WorkerConcurrency",
            "BatchSize",
        )
    } == {
        "WebhookMaxAttempts": 3,
        "WebhookRetryDelay": 2500,
        "WebhookTimeout": 5000,
        "WorkerConcurrency": 5,
        "BatchSize": 100,
    }


def test_cloudwatch_inspection_is_there(template: dict[str, Any]) -> None:
    names = [
        q["Properties"]["Name"]["Fn::Sub"] for q in resources(template, "AWS::Logs::QueryDefinition").values()
    ]
    assert {n.split("/", 1)[1] for n in names} == {
        "failed deliveries by partner",
        "dead-lettered deliveries",
        "slowest endpoints",
    }
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    assert {"DeliveryDLQDepthAlarm", "EventsDLQDepthAlarm", "DeliveryErrorRateAlarm"} <= set(alarms)
    for group in resources(template, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # the queries read fields the deliver function really logs
    deliver_source = (ROOT / "layers" / "common" / "webhooks" / "deliver.py").read_text()
    for field in ("partner_id", "latency_ms", "outcome", '"delivery attempt"', '"delivery dead-lettered"'):
        assert field in deliver_source


def test_cfn_lint_passes() -> None:
    result = subprocess.run(
        [str(TOOLS / "cfn-lint"), str(TEMPLATE)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sam_validate_lint_passes() -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAM_CLI_TELEMETRY": "0",
        "HOME": str(ROOT / ".venv-tools"),
    }
    result = subprocess.run(
        [str(TOOLS / "sam"), "validate", "--lint", "-t", str(TEMPLATE)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


def test_localstack_compose_file_is_well_formed() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.localstack.yml").read_text())
    services = compose["services"]
    assert {"localstack", "mongo"} <= set(services)
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    assert "sqs" in services["localstack"]["environment"]["SERVICES"]
    docker_compose = shutil.which("docker-compose")
    if docker_compose:  # parse with the real tool where it is installed
        result = subprocess.run(
            [docker_compose, "-f", str(ROOT / "docker-compose.localstack.yml"), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    assert sys.executable
