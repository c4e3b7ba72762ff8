"""The SAM template checked against the code: handlers, env vars, event sources, queue settings."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from webhooks.config import Settings, load_settings
from webhooks.delivery.schedule import STANDARD_SCHEDULE, service_default
from webhooks_cli.topology import FUNCTION_TIMEOUTS, QUEUES

from support import CfnLoader

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
TOOLS = ROOT / ".venv-tools" / "bin"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    return loaded


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


FUNCTIONS = {"IngestFunction": "ingest", "DispatchFunction": "dispatch", "DeliverFunction": "deliver"}
QUEUE_RESOURCES = {
    "EVENTS_QUEUE_URL": "EventsQueue",
    "EVENTS_DLQ_URL": "EventsDLQ",
    "DELIVERY_QUEUE_URL": "DeliveryQueue",
    "DELIVERY_DLQ_URL": "DeliveryDLQ",
}


# read by webhooks.observability at import, before any setting (the metrics' stack dimension)
OBSERVABILITY_VARIABLES = {"WEBHOOKS_STACK"}


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
    assert str(importlib.import_module("webhooks").__file__).startswith(str(ROOT / "layers" / "common"))
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
            known = field in Settings.model_fields or var in OBSERVABILITY_VARIABLES
            assert known or var.startswith("POWERTOOLS_"), f"unknown variable {var}"


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


def test_max_attempts_spans_the_settings_range_apart_from_the_receive_count(
    template: dict[str, Any],
) -> None:
    from webhooks.delivery.deliverer import MAX_UNATTEMPTED_RECEIVES

    # the attempts made travel in the message: the parameter allows what the setting allows,
    # or blank (unset: the retry schedule decides)
    [bounds] = [f.metadata for n, f in Settings.model_fields.items() if n == "webhook_max_attempts"]
    low = next(c.ge for c in bounds if hasattr(c, "ge"))
    high = next(c.le for c in bounds if hasattr(c, "le"))
    pattern = template["Parameters"]["WebhookMaxAttempts"]["AllowedPattern"]
    allowed = [n for n in range(-1, 1000) if re.fullmatch(pattern, str(n))]
    assert (min(allowed), max(allowed), len(allowed)) == (low, high, high - low + 1) == (1, 100, 100)
    assert re.fullmatch(pattern, "") and not re.fullmatch(pattern, "01")
    # the receive count is a crash net: deliver dead-letters a copy itself after
    # MAX_UNATTEMPTED_RECEIVES receives without a POST (beyond its deliberate waits), so SQS's
    # redrive must leave room for that bound and a couple of deliberate waits
    redrive = template["Resources"]["DeliveryQueue"]["Properties"]["RedrivePolicy"]
    assert MAX_UNATTEMPTED_RECEIVES + 2 == 7
    assert redrive["maxReceiveCount"] >= 7


def test_iam_is_least_privilege_on_exact_queues(template: dict[str, Any]) -> None:
    for logical_id in FUNCTIONS:
        role = template["Resources"][template["Resources"][logical_id]["Properties"]["Role"]["Fn::GetAtt"][0]]
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                if "Fn::If" in statement:  # a statement under a condition, or none
                    condition, statement, otherwise = statement["Fn::If"]
                    assert condition in template["Conditions"] and otherwise == {"Ref": "AWS::NoValue"}
                targets = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                if statement["Action"] == ["kms:Decrypt"]:
                    # any key of the account, but only as SSM decrypts a SecureString for the role
                    assert statement["Condition"] == {
                        "StringEquals": {"kms:ViaService": {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}}
                    }
                    continue
                assert "*" not in str(targets)
                assert all(a.startswith(("sqs:", "ssm:GetParameter")) for a in statement["Action"])


def test_parameters_cover_every_webhook_setting_with_the_seed_defaults(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert {
        k: params[k]["Default"]
        for k in (
            "WebhookTimeout",
            "WorkerConcurrency",
            "BatchSize",
        )
    } == {
        "WebhookTimeout": 5000,
        "WorkerConcurrency": 5,
        "BatchSize": 100,
    }


def test_by_default_the_retry_variables_are_blank_so_the_standard_schedule_applies(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    params = template["Parameters"]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    retry = {
        "WEBHOOK_MAX_ATTEMPTS": "WebhookMaxAttempts",
        "WEBHOOK_RETRY_DELAY": "WebhookRetryDelay",
        "WEBHOOK_RETRY_SCHEDULE": "RetrySchedule",
    }
    for name, parameter in retry.items():
        assert variables[name] == {"Ref": parameter} and params[parameter]["Default"] == ""
        monkeypatch.setenv(name, params[parameter]["Default"])  # as Lambda would set it
    settings = load_settings()
    assert not settings.model_fields_set & {
        "webhook_max_attempts",
        "webhook_retry_delay",
        "webhook_retry_schedule",
    }
    assert service_default(settings) is STANDARD_SCHEDULE
    # a schedule in the parameter reaches the functions' settings as the service default
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "5, 300,1800")
    assert re.fullmatch(params["RetrySchedule"]["AllowedPattern"], "5, 300,1800")
    assert service_default(load_settings()).attempts == 4


def test_a_retry_schedule_with_the_node_parameters_is_refused_before_deploying(
    template: dict[str, Any],
) -> None:
    assert refused(template, RetrySchedule="5,300") == []
    assert refused(template, RetrySchedule="5,300", WebhookMaxAttempts="3", WebhookRetryDelay="1000") == [
        "RetrySchedule replaces WebhookMaxAttempts; leave WebhookMaxAttempts blank",
        "RetrySchedule replaces WebhookRetryDelay; leave WebhookRetryDelay blank",
    ]
    assert refused(template, WebhookMaxAttempts="3", WebhookRetryDelay="1000") == []


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
    deliver_source = (ROOT / "layers" / "common" / "webhooks" / "delivery" / "deliverer.py").read_text()
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
    localstack = services["localstack"]
    assert "sqs" in localstack["environment"]["SERVICES"]
    # a release that starts without an auth token, never a moving tag
    assert re.fullmatch(r"localstack/localstack:\d+\.\d+\.\d+", localstack["image"]), localstack["image"]
    # Lambda containers (and LocalStack) resolve host.docker.internal on a Linux engine too
    assert "host.docker.internal:host-gateway" in localstack["extra_hosts"]
    assert "--add-host=host.docker.internal:host-gateway" in localstack["environment"]["LAMBDA_DOCKER_FLAGS"]
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


def test_samconfig_never_points_deploy_at_the_source_template() -> None:
    """`sam deploy`/`sam package` given the source template upload unbuilt code."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for env, commands in config.items():
        if not isinstance(commands, dict):
            continue
        for command in ("global", "deploy", "package"):
            assert "template_file" not in commands.get(command, {}).get("parameters", {}), (env, command)
        if "build" in commands:
            assert commands["build"]["parameters"]["template_file"] == "infra/template.yaml"
    assert "sync" not in config["default"], "sam sync belongs to a dev stack, never the production one"


def test_architecture_is_one_parameter_for_functions_and_layer(template: dict[str, Any]) -> None:
    assert template["Parameters"]["Architecture"]["Default"] == "arm64"
    assert template["Globals"]["Function"]["Architectures"] == [{"Ref": "Architecture"}]
    layer = template["Resources"]["CommonLayer"]
    assert layer["Metadata"]["BuildArchitecture"] == {"Ref": "Architecture"}
    # layers/common/Makefile builds it (compiled .pyc; tests/deploy checks the result)
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert "build-CommonLayer:" in (ROOT / "layers" / "common" / "Makefile").read_text()
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    # its compiled wheels are built for the functions' runtime only
    assert layer["Properties"]["CompatibleRuntimes"] == [template["Globals"]["Function"]["Runtime"]]
    assert not any(
        line.split("#")[0].strip().startswith(("boto3", "botocore"))
        for line in (ROOT / "layers" / "common" / "requirements.txt").read_text().splitlines()
    )


def test_a_fresh_account_deploys_with_the_defaults(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    # access logs need the account's API Gateway CloudWatch role: off unless asked for
    assert params["EnableApiAccessLogs"]["Default"] == "false"
    assert params["CreateApiGatewayAccountRole"]["Default"] == "false"
    account = template["Resources"]["ApiGatewayAccount"]
    assert account["Condition"] == "ApiGatewayAccountRole"


def test_dead_letter_queues_outlive_the_stack(template: dict[str, Any]) -> None:
    for dlq in ("EventsDLQ", "DeliveryDLQ"):
        resource = template["Resources"][dlq]
        # kept when the stack is deleted; a rolled-back create deletes the new, empty queue
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resource["UpdateReplacePolicy"] == "Retain"


def test_alarms_cover_queues_functions_and_api_and_say_when_they_recover(template: dict[str, Any]) -> None:
    alarms = resources(template, "AWS::CloudWatch::Alarm")
    for alarm in alarms.values():
        assert (
            alarm["Properties"]["AlarmActions"] == alarm["Properties"]["OKActions"] == [{"Ref": "AlarmTopic"}]
        )
    watched = {
        (p.get("Namespace"), p.get("MetricName"), json.dumps(p.get("Dimensions"), sort_keys=True))
        for p in (a["Properties"] for a in alarms.values())
    }
    # the delivery queue's age is not watched: backoff keeps messages there on purpose
    # (DeliveryStartLag instead, test_template_alarms.py)
    dims = json.dumps(
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsQueue", "QueueName"]}}], sort_keys=True
    )
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", dims) in watched
    for function in FUNCTIONS:
        dims = json.dumps([{"Name": "FunctionName", "Value": {"Ref": function}}], sort_keys=True)
        assert ("AWS/Lambda", "Errors", dims) in watched and ("AWS/Lambda", "Throttles", dims) in watched
    api = [p for ns, p, _ in watched if ns == "AWS/ApiGateway"]
    assert api == ["5XXError"]
    assert template["Resources"]["WebhooksApi"]["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-api"}


def emitted_metrics() -> dict[str, str]:
    """Metric name -> the service (function) whose code emits it."""
    layer = ROOT / "layers" / "common" / "webhooks"
    services = {"ingest": "ingest", "dispatch": "dispatch", "delivery": "deliver"}
    found: dict[str, str] = {}
    for package, service in services.items():
        for module in sorted((layer / package).glob("*.py")):
            for name in re.findall(r'add_metric\(\s*name="(\w+)"', module.read_text()):
                found[name] = service
    return found


def test_the_dashboard_shows_metrics_the_code_emits(template: dict[str, Any]) -> None:
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    dashboard = json.loads(body)
    emitted = emitted_metrics()
    ours = []
    for widget in dashboard["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            namespace, name, *dimensions = [m for m in metric if not isinstance(m, dict)]
            if namespace == "Webhooks":
                assert name in emitted, f"the dashboard shows {name}, which no code emits"
                assert dimensions == ["service", emitted[name], "stack", "${AWS::StackName}"], (
                    name,
                    dimensions,
                )
                ours.append(name)
    assert {"EventsAccepted", "Delivered", "AttemptFailed", "DeadLettered", "DeliveryLatency"} <= set(ours)
    stats = {m[-1].get("stat") for w in dashboard["widgets"] for m in w["properties"].get("metrics", [])}
    assert {"p50", "p99"} <= stats
    queues_shown = set(re.findall(r"\$\{(\w+)\.QueueName\}", body))
    assert queues_shown == {"EventsQueue", "DeliveryQueue", "EventsDLQ", "DeliveryDLQ"}
    [logs] = [w for w in dashboard["widgets"] if w["type"] == "log"]
    assert "delivery dead-lettered" in logs["properties"]["query"]
    assert (
        '"delivery dead-lettered"'
        in (ROOT / "layers" / "common" / "webhooks" / "delivery" / "deliverer.py").read_text()
    )


def evaluate(expr: Any, params: dict[str, str]) -> Any:
    """The few intrinsic functions CloudFormation Rules use here."""
    if isinstance(expr, dict):
        [(fn, arg)] = expr.items()
        if fn == "Ref":
            value = params[arg]
            return value
        args = [evaluate(a, params) for a in arg] if isinstance(arg, list) else evaluate(arg, params)
        if fn == "Fn::Equals":
            return str(args[0]) == str(args[1])
        if fn == "Fn::Not":
            return not args[0]
        if fn == "Fn::Contains":
            return str(args[1]) in [str(v) for v in args[0]]
        if fn == "Fn::Join":
            return args[0].join(args[1] if isinstance(args[1], list) else [args[1]])
        raise AssertionError(f"unexpected {fn}")
    if isinstance(expr, list):
        return [evaluate(e, params) for e in expr]
    return expr


def refused(template: dict[str, Any], **overrides: Any) -> list[str]:
    params = {k: v.get("Default") for k, v in template["Parameters"].items()}
    params.update(overrides)
    messages = []
    for rule in template["Rules"].values():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], params):
            continue
        messages += [a["AssertDescription"] for a in rule["Assertions"] if not evaluate(a["Assert"], params)]
    return messages


def test_rules_refuse_combinations_aws_would_refuse_mid_deploy(template: dict[str, Any]) -> None:
    assert refused(template) == []
    assert refused(template, DeliverBatchSize="100") == [
        "A DeliverBatchSize over 10 needs a DeliverMaxBatchingWindow of at least 1 second"
    ]
    assert refused(template, DeliverBatchSize="100", DeliverMaxBatchingWindow="1") == []
    assert refused(template, DispatchBatchSize="11")
    assert refused(template, DispatchBatchSize="10") == []
    assert refused(template, VpcSubnetIds=["subnet-1"], VpcSecurityGroupIds=[""]) == [
        "VpcSubnetIds needs VpcSecurityGroupIds"
    ]
    assert refused(template, CreateApiGatewayAccountRole="true")
    # WAF's rate-based rules start at 10 requests; 0 means no WAF at all
    waf = ["AdminRateLimitPer5Min is 0 (no WAF) or at least 10, WAF's minimum"]
    assert [refused(template, AdminRateLimitPer5Min=str(n)) for n in (1, 9)] == [waf, waf]
    assert refused(template, AdminRateLimitPer5Min="0") == refused(template, AdminRateLimitPer5Min="10") == []


def test_the_deliver_timeout_fits_the_longest_post_and_its_settling(template: dict[str, Any]) -> None:
    from webhooks.delivery.deliverer import SETTLE_SECONDS
    from webhooks.services.schemas import TimeoutMs

    [bound] = [m for m in get_args(TimeoutMs)[1:] if hasattr(m, "metadata")]
    partner_max_ms = next(c.le for c in bound.metadata if hasattr(c, "le"))
    global_max_ms = template["Parameters"]["WebhookTimeout"]["MaxValue"]
    deliver_timeout = template["Resources"]["DeliverFunction"]["Properties"]["Timeout"]
    # one POST of the longest timeout, started at once, always finishes and settles in time;
    # what cannot start in time is put back unattempted (delivery/deliverer.py)
    assert max(partner_max_ms, global_max_ms) / 1000 + SETTLE_SECONDS < deliver_timeout
