"""The template's alarms reach people, watch this stack's metrics only, and page on real trouble."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import CfnLoader

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
LAYER = ROOT / "layers" / "common" / "webhooks"
FUNCTIONS = {"IngestFunction": "ingest", "DispatchFunction": "dispatch", "DeliverFunction": "deliver"}
STACK = {"Ref": "AWS::StackName"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    return loaded


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"
    }


def watched_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Namespace, MetricName and Dimensions of each metric an alarm reads (plain or math)."""
    if "MetricName" in alarm:
        return [{k: alarm.get(k) for k in ("Namespace", "MetricName", "Dimensions")}]
    return [m["MetricStat"]["Metric"] for m in alarm.get("Metrics", []) if "MetricStat" in m]


def emitted_metrics() -> dict[str, str]:
    """Metric name -> the service (function) whose code emits it."""
    services = {"ingest": "ingest", "dispatch": "dispatch", "delivery": "deliver"}
    found: dict[str, str] = {}
    for package, service in services.items():
        for module in sorted((LAYER / package).glob("*.py")):
            for name in re.findall(r'add_metric\(\s*name="(\w+)"', module.read_text()):
                found[name] = service
    return found


EMF_PROBE = """
from webhooks.observability import MetricUnit, metrics

@metrics.log_metrics
def handler(event, context):
    metrics.add_metric(name="Delivered", unit=MetricUnit.Count, value=1)

handler({}, None)
"""


def emf_line(stack: str | None) -> dict[str, Any]:
    """The EMF line a function prints, in a fresh process as Lambda starts one."""
    env = {k: v for k, v in os.environ.items() if k != "WEBHOOKS_STACK"}
    env.update(POWERTOOLS_METRICS_DISABLED="false", POWERTOOLS_SERVICE_NAME="deliver")
    if stack is not None:
        env["WEBHOOKS_STACK"] = stack
    done = subprocess.run(
        [sys.executable, "-c", EMF_PROBE], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    [line] = [json.loads(x) for x in done.stdout.splitlines() if x.startswith('{"_aws"')]
    return line  # type: ignore[no-any-return]


def test_cloudwatch_can_publish_to_the_alarm_topic(template: dict[str, Any]) -> None:
    """CloudWatch cannot use the AWS-managed alias/aws/sns key: alarms would never be sent."""
    topic = template["Resources"]["AlarmTopic"].get("Properties") or {}
    key = topic.get("KmsMasterKeyId")
    if key is None:
        return
    assert isinstance(key, dict), f"AlarmTopic is encrypted with {key!r}, a key CloudWatch cannot use"
    key_id = key["Ref"] if "Ref" in key else key["Fn::GetAtt"][0]
    resource = template["Resources"][key_id]
    assert resource["Type"] == "AWS::KMS::Key"
    grants = [
        s
        for s in resource["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]
    actions = {a for s in grants for a in s["Action"]}
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions


def test_metrics_carry_the_stack_read_from_the_environment() -> None:
    line = emf_line("webhooks-prod")
    [dimensions] = line["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert set(dimensions) == {"service", "stack"}
    assert (line["service"], line["stack"]) == ("deliver", "webhooks-prod")
    assert emf_line(None)["stack"] == "local"  # outside a stack (webhooks local, tests)


def test_the_template_names_the_stack_every_function_puts_in_its_metrics(template: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["Environment"]["Variables"]["WEBHOOKS_STACK"] == STACK
    for logical_id in FUNCTIONS:
        variables = (
            template["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
        )
        assert "WEBHOOKS_STACK" not in variables  # never overridden per function


def test_alarms_on_our_metrics_watch_exactly_the_dimensions_powertools_emits(
    template: dict[str, Any],
) -> None:
    """CloudWatch matches a metric by its whole dimension set: one dimension more or less
    and the alarm watches a metric nobody emits (INSUFFICIENT_DATA, treated as fine)."""
    [emitted_dimensions] = emf_line("any")["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    emitted = emitted_metrics()
    ours = []
    for name, alarm in alarms(template).items():
        for metric in watched_metrics(alarm):
            if metric["Namespace"] != "Webhooks":
                continue
            ours.append(metric["MetricName"])
            assert metric["MetricName"] in emitted, (
                f"{name} watches {metric['MetricName']}, which no code emits"
            )
            dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            assert set(dimensions) == set(emitted_dimensions), name
            assert dimensions == {"service": emitted[metric["MetricName"]], "stack": STACK}, name
    assert {
        "AttemptFailed",
        "Delivered",
        "DeliveryStartLag",
        "EndpointDisabled",
        "DeliveriesNotStarted",
    } <= set(ours)


def test_every_dashboard_line_of_our_metrics_is_this_stacks(template: dict[str, Any]) -> None:
    body = json.loads(template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"])
    emitted = emitted_metrics()
    shown = 0
    for widget in body["widgets"]:
        for metric in widget["properties"].get("metrics", []):
            namespace, name, *dimensions = [m for m in metric if not isinstance(m, dict)]
            if namespace == "Webhooks":
                shown += 1
                pairs = dict(zip(dimensions[::2], dimensions[1::2], strict=True))
                assert pairs == {"service": emitted[name], "stack": "${AWS::StackName}"}, (name, pairs)
    assert shown >= 5


def test_the_delivery_queue_age_does_not_page_on_deliberate_waits(template: dict[str, Any]) -> None:
    """A partner's Retry-After: 3600 keeps a message in the delivery queue for an hour on purpose."""
    watched = {
        (m["Namespace"], m["MetricName"], json.dumps(m["Dimensions"], sort_keys=True))
        for a in alarms(template).values()
        for m in watched_metrics(a)
    }
    delivery_age = json.dumps(
        [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeliveryQueue", "QueueName"]}}]
    )
    events_age = json.dumps([{"Name": "QueueName", "Value": {"Fn::GetAtt": ["EventsQueue", "QueueName"]}}])
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", delivery_age) not in watched
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", events_age) in watched  # dispatch has no waits
    [lag] = [a for a in alarms(template).values() if a.get("MetricName") == "DeliveryStartLag"]
    assert lag["Statistic"] == "Maximum" and lag["ComparisonOperator"] == "GreaterThanThreshold"
    assert lag["Threshold"] == {"Ref": "DeliveryLagAlarmSeconds"}
    assert template["Parameters"]["DeliveryLagAlarmSeconds"]["Default"] == 600
    assert lag["EvaluationPeriods"] >= 3 and lag.get("DatapointsToAlarm", lag["EvaluationPeriods"]) >= 2
    assert lag["TreatMissingData"] == "notBreaching"  # no deliveries: no lag


def test_disabled_endpoints_and_deliveries_not_started_page(template: dict[str, Any]) -> None:
    by_metric = {a.get("MetricName"): a for a in alarms(template).values()}
    for metric in ("EndpointDisabled", "DeliveriesNotStarted"):
        alarm = by_metric[metric]
        assert alarm["Namespace"] == "Webhooks" and alarm["Statistic"] == "Sum"
        assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_each_function_pages_before_its_duration_reaches_the_timeout(template: dict[str, Any]) -> None:
    for logical_id in FUNCTIONS:
        timeout_ms = template["Resources"][logical_id]["Properties"]["Timeout"] * 1000
        [alarm] = [
            a
            for a in alarms(template).values()
            if a.get("MetricName") == "Duration"
            and a["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": logical_id}}]
        ]
        assert alarm["Namespace"] == "AWS/Lambda"
        assert alarm.get("ExtendedStatistic") == "p99" or alarm.get("Statistic") == "Maximum"
        assert 0.5 * timeout_ms <= alarm["Threshold"] <= 0.9 * timeout_ms, (logical_id, alarm["Threshold"])
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
