"""A first deploy with every default works, and later deploys roll out safely: the template as
`sam deploy --guided` reads it and as SAM translates it (the SAM CLI's own code, offline)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support import CfnLoader

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
TOOLS = ROOT / ".venv-tools" / "bin"
FUNCTIONS = ("IngestFunction", "DispatchFunction", "DeliverFunction")
ROLES = ("IngestRole", "DispatchRole", "DeliverRole")
TOOLS_ENV = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.load(TEMPLATE.read_text(), Loader=CfnLoader)
    return loaded


# samtranslator beside the SAM CLI (.venv-tools), as tests/deploy/test_iam.py runs it
TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
for logical_id, resource in template["Resources"].items():
    for key in ("CodeUri", "ContentUri"):
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = f"s3://artifacts/{logical_id}.zip"
parameters = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
print(json.dumps(transform(template, parameters, NoManagedPolicies())))
"""

# what `sam deploy --guided` runs before it asks "<Function> has no authentication. Is this okay?"
GUIDED_AUTH_CHECK = """
import json, sys
from samcli.commands.deploy.auth_utils import auth_per_resource
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1])
print(json.dumps(auth_per_resource(stacks)))
"""


def run_tools_python(code: str, *args: str) -> str:
    done = subprocess.run(
        [str(TOOLS / "python"), "-c", code, str(TEMPLATE), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=TOOLS_ENV,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return json.loads(run_tools_python(TRANSLATE))  # type: ignore[no-any-return]


def test_guided_deploy_does_not_ask_to_confirm_an_api_without_authentication() -> None:
    """The prompt defaults to N, which aborts a first deploy taken with every default."""
    checked = json.loads(run_tools_python(GUIDED_AUTH_CHECK))
    assert checked, "the SAM CLI found no API event to check"
    assert [name for name, has_auth in checked if not has_auth] == []


def test_every_guided_prompt_can_be_answered_with_its_default(template: dict[str, Any]) -> None:
    """No NoEcho prompt (it shows no default), and each default passes its own constraints."""
    for name, spec in template["Parameters"].items():
        assert not spec.get("NoEcho"), f"{name} is a NoEcho prompt"
        assert "Default" in spec, name
        default = spec["Default"]
        if "AllowedPattern" in spec:
            # CloudFormation matches the pattern against the whole value
            assert re.fullmatch(spec["AllowedPattern"], str(default)), name
        if "AllowedValues" in spec:
            assert str(default) in [str(v) for v in spec["AllowedValues"]], name
        if spec["Type"] == "Number":
            assert spec.get("MinValue", float("-inf")) <= float(default) <= spec.get("MaxValue", float("inf"))


def test_the_admin_key_hash_is_read_from_an_ssm_parameter_the_role_may_read(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert "AdminApiKeyHash" not in params
    spec = params["AdminApiKeyHashParameterName"]
    assert spec["Default"] == ""  # the admin API off until a parameter is named
    pattern = re.compile(spec["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("/webhooks/admin-key-hash")
    assert not pattern.fullmatch("webhooks/admin") and not pattern.fullmatch(" /x")
    ingest = template["Resources"]["IngestFunction"]["Properties"]["Environment"]["Variables"]
    assert ingest["ADMIN_API_KEY_HASH_PARAMETER"] == {"Ref": "AdminApiKeyHashParameterName"}
    assert "ADMIN_API_KEY_HASH" not in ingest  # the hash never sits in GetFunctionConfiguration
    assert template["Conditions"]["AdminApi"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AdminApiKeyHashParameterName"}, ""]}]
    }
    [statement] = [
        s["Fn::If"]
        for policy in template["Resources"]["IngestRole"]["Properties"]["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
        if "Fn::If" in s
    ]
    condition, allow, otherwise = statement
    assert (condition, otherwise) == ("AdminApi", {"Ref": "AWS::NoValue"})
    assert allow["Action"] == ["ssm:GetParameter"]
    assert allow["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${AdminApiKeyHashParameterName}"
    }


def test_customer_key_secure_strings_decrypt_through_ssm_only(template: dict[str, Any]) -> None:
    for role in ROLES:
        statements = [
            s
            for policy in template["Resources"][role]["Properties"]["Policies"]
            for s in policy["PolicyDocument"]["Statement"]
            if s.get("Action") == ["kms:Decrypt"]
        ]
        assert len(statements) == 1, role
        via = statements[0]["Condition"]["StringEquals"]["kms:ViaService"]
        assert via == {"Fn::Sub": "ssm.${AWS::Region}.amazonaws.com"}


def test_lambda_loop_detection_is_off_where_the_code_requeues_to_its_own_trigger(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    assert resources["DispatchFunction"]["Properties"]["RecursiveLoop"] == "Allow"
    assert resources["DeliverFunction"]["Properties"]["RecursiveLoop"] == "Allow"
    assert "RecursiveLoop" not in resources["IngestFunction"]["Properties"]  # no loop: keep the guard


def test_each_function_has_a_concurrency_reservation_no_smaller_than_its_poller(
    template: dict[str, Any],
) -> None:
    resources = template["Resources"]
    for logical_id in ("DispatchFunction", "DeliverFunction"):
        props = resources[logical_id]["Properties"]
        [event] = props["Events"].values()
        # one parameter for both: the reservation equals the event source's maximum, by construction
        assert (
            props["ReservedConcurrentExecutions"]
            == event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
        )
    ingest = resources["IngestFunction"]["Properties"]
    assert ingest["ReservedConcurrentExecutions"] == {"Ref": "IngestReservedConcurrency"}
    assert template["Parameters"]["IngestReservedConcurrency"]["MinValue"] >= 1  # 0 would stop the API


def test_in_a_vpc_every_function_role_may_manage_its_network_interfaces(template: dict[str, Any]) -> None:
    for role in ROLES:
        managed = template["Resources"][role]["Properties"]["ManagedPolicyArns"]
        assert {
            "Fn::If": [
                "InVpc",
                {
                    "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
                },
                {"Ref": "AWS::NoValue"},
            ]
        } in managed, role


def test_every_function_rolls_out_through_its_alias_and_rolls_back_on_its_errors_alarm(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    assert template["Globals"]["Function"]["AutoPublishAlias"] == "live"
    resources = translated["Resources"]
    aliases = {
        r["Properties"]["FunctionName"]["Ref"]: k
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Alias"
    }
    assert set(aliases) == set(FUNCTIONS)
    # the SQS pollers and API Gateway invoke the alias, never $LATEST
    for mapping in (r for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"):
        assert mapping["Properties"]["FunctionName"]["Ref"] in aliases.values()
    permissions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    assert permissions and all(
        p["Properties"]["FunctionName"] == {"Ref": aliases["IngestFunction"]} for p in permissions
    )
    integrations = json.dumps(resources["WebhooksApi"]["Properties"]["Body"]["paths"])
    assert "${IngestFunctionAliaslive}" in integrations and "${IngestFunction.Arn}" not in integrations
    # CodeDeploy shifts each alias and stops (rolls back) when the function's errors alarm fires
    for logical_id in FUNCTIONS:
        group = resources[f"{logical_id}DeploymentGroup"]["Properties"]
        errors_alarm = logical_id.removesuffix("Function") + "ErrorsAlarm"
        assert group["AlarmConfiguration"] == {"Enabled": True, "Alarms": [{"Name": {"Ref": errors_alarm}}]}
        assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
        assert resources[aliases[logical_id]]["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    deployment = template["Globals"]["Function"]["DeploymentPreference"]
    assert deployment["Type"] == {"Ref": "DeploymentType"}
    assert template["Parameters"]["DeploymentType"]["Default"].startswith(("Canary", "Linear"))


def test_without_codedeploy_the_aliases_are_updated_at_once() -> None:
    """LocalStack's free edition has no CodeDeploy: CodeDeployEnabled=false leaves none in the stack."""
    translated = json.loads(run_tools_python(TRANSLATE, json.dumps({"CodeDeployEnabled": "false"})))
    kinds = [r["Type"] for r in translated["Resources"].values()]
    assert kinds.count("AWS::Lambda::Alias") == 3
    assert not [k for k in kinds if k.startswith("AWS::CodeDeploy::")]
    assert not [r for r in translated["Resources"].values() if "UpdatePolicy" in r]


def test_ingest_provisioned_concurrency_is_an_option_off_by_default(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    assert template["Parameters"]["IngestProvisionedConcurrency"]["Default"] == 0
    assert template["Conditions"]["IngestProvisioned"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "IngestProvisionedConcurrency"}, 0]}]
    }
    alias = translated["Resources"]["IngestFunctionAliaslive"]["Properties"]
    assert alias["ProvisionedConcurrencyConfig"]["Fn::If"][0] == "IngestProvisioned"


def error_body(template: str) -> Any:
    """A gateway response's body as a client gets it ($context.error.messageString is quoted)."""
    return json.loads(template.replace("$context.error.messageString", '"Some message"'))


def test_api_gateway_answers_in_the_services_error_shape(template: dict[str, Any]) -> None:
    api = template["Resources"]["WebhooksApi"]["Properties"]
    responses = api["GatewayResponses"]
    expected = {
        "THROTTLED": "429",
        "REQUEST_TOO_LARGE": "413",
        "INTEGRATION_TIMEOUT": "504",
        "MISSING_AUTHENTICATION_TOKEN": "404",  # no such route: the app says 404 "Not found" too
        "DEFAULT_4XX": None,
        "DEFAULT_5XX": None,
    }
    assert {k: v.get("StatusCode") for k, v in responses.items()} == expected
    for name, response in responses.items():
        body = error_body(response["ResponseTemplates"]["application/json"])
        assert list(body) == ["error"] and isinstance(body["error"], str) and body["error"], name
    assert error_body(responses["MISSING_AUTHENTICATION_TOKEN"]["ResponseTemplates"]["application/json"]) == {
        "error": "Not found"
    }
    assert api["EndpointConfiguration"] == {"Type": "REGIONAL"}


def test_access_log_lines_say_when_why_and_who(template: dict[str, Any]) -> None:
    setting = template["Resources"]["WebhooksApi"]["Properties"]["AccessLogSetting"]["Fn::If"][1]
    line = json.loads(re.sub(r"\$context\.[\w.]+", "x", setting["Format"]))
    assert line  # one JSON object per request
    for variable in (
        "requestTime",
        "integrationLatency",
        "integrationErrorMessage",
        "error.message",
        "identity.userAgent",
        "identity.sourceIp",
        "status",
    ):
        assert f"$context.{variable}" in setting["Format"], variable


def test_ingest_answers_before_api_gateway_gives_up(template: dict[str, Any]) -> None:
    assert template["Resources"]["IngestFunction"]["Properties"]["Timeout"] <= 25  # API Gateway: 29 s


def test_no_arn_assumes_the_commercial_partition() -> None:
    assert "arn:aws:" not in TEMPLATE.read_text()


def test_dead_letter_queues_take_dead_letters_from_their_own_source_only(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for source, dlq in (("EventsQueue", "EventsDLQ"), ("DeliveryQueue", "DeliveryDLQ")):
        props = resources[source]["Properties"]
        assert props["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq, "Arn"]}
        allow = resources[dlq]["Properties"]["RedriveAllowPolicy"]
        assert allow["redrivePermission"] == "byQueue"
        [arn] = allow["sourceQueueArns"]
        name = props["QueueName"]["Fn::Sub"]
        assert arn == {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + name}


def test_what_outlives_the_stack_is_retained_but_a_failed_create_cleans_up(template: dict[str, Any]) -> None:
    """Retained resources survive a stack's deletion and replacement, but a rolled-back create
    deletes them (RetainExceptOnCreate): a retained log group with its fixed name would make the
    next `sam deploy` fail with "already exists" (issue 29)."""
    resources = template["Resources"]
    kept = {k for k, v in resources.items() if v["Type"] == "AWS::Logs::LogGroup"}
    kept |= {"ApiGatewayAccount", "ApiGatewayCloudWatchRole"}  # an account-wide setting
    kept |= {"EventsDLQ", "DeliveryDLQ"}  # dead letters outlive the stack
    assert len(kept) == 8
    with_a_policy = {k for k, v in resources.items() if "DeletionPolicy" in v or "UpdateReplacePolicy" in v}
    assert with_a_policy == kept
    for logical_id in kept:
        assert resources[logical_id]["DeletionPolicy"] == "RetainExceptOnCreate", logical_id
        # UpdateReplacePolicy has no RetainExceptOnCreate: a replacement is never a rollback
        assert resources[logical_id]["UpdateReplacePolicy"] == "Retain", logical_id


def test_log_class_and_success_line_sampling_are_parameters(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    assert params["LogGroupClass"]["Default"] == "STANDARD"  # EMF metrics need it
    assert params["LogGroupClass"]["AllowedValues"] == ["STANDARD", "INFREQUENT_ACCESS"]
    assert template["Conditions"]["InfrequentAccessLogs"] == {
        "Fn::Equals": [{"Ref": "LogGroupClass"}, "INFREQUENT_ACCESS"]
    }
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Logs::LogGroup":
            # STANDARD leaves the property out: CloudFormation cannot update a group's class, and
            # groups of stacks deployed before the parameter existed have none
            assert resource["Properties"]["LogGroupClass"] == {
                "Fn::If": ["InfrequentAccessLogs", "INFREQUENT_ACCESS", {"Ref": "AWS::NoValue"}]
            }
    rate = params["SuccessLogSampleRate"]
    assert (rate["Default"], rate["MinValue"], rate["MaxValue"]) == (1, 0, 1)
    deliver = template["Resources"]["DeliverFunction"]["Properties"]["Environment"]["Variables"]
    assert deliver["SUCCESS_LOG_SAMPLE_RATE"] == {"Ref": "SuccessLogSampleRate"}


def test_ingest_provisioned_concurrency_fits_in_the_reserved_concurrency(template: dict[str, Any]) -> None:
    """No Rule can compare two numbers, so both descriptions state the bound for the operator
    (Lambda refuses provisioned above reserved concurrency half-way through the deploy)."""
    params = template["Parameters"]
    provisioned, reserved = params["IngestProvisionedConcurrency"], params["IngestReservedConcurrency"]
    assert provisioned["Default"] <= reserved["Default"]
    assert provisioned["MaxValue"] <= reserved["MaxValue"]
    assert "At most IngestReservedConcurrency" in provisioned["Description"]
    assert "At least IngestProvisionedConcurrency" in reserved["Description"]


def test_parameter_descriptions_name_only_parameters_that_exist(template: dict[str, Any]) -> None:
    params = template["Parameters"]
    named = {
        word
        for spec in params.values()
        for word in re.findall(
            r"\b[A-Z][a-z]+(?:[A-Z][a-z0-9]+)*(?:Count|Seconds|Size|Name|Concurrency)\b",
            spec.get("Description", ""),
        )
    }
    named -= {"MaximumConcurrency"}  # the event source's property, not a parameter
    assert named and named <= set(params), named - set(params)


def test_samconfig_keeps_codedeploy_out_of_localstack_and_dev_fast() -> None:
    text = (ROOT / "samconfig.toml").read_text()
    local = text.split("[local.deploy.parameters]", 1)[1]
    assert 'CodeDeployEnabled=\\"false\\"' in local
    dev = text.split("[dev.sync.parameters]", 1)[1].split("\n[", 1)[0]
    assert 'DeploymentType=\\"AllAtOnce\\"' in dev


def test_tracing_is_one_parameter_off_by_default_that_sets_mode_tracer_layer_and_role(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    parameter = template["Parameters"]["Tracing"]
    assert parameter["Default"] == "Disabled"
    assert set(parameter["AllowedValues"]) == {"Active", "PassThrough", "Disabled"}
    assert template["Conditions"]["TracingOn"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "Tracing"}, "Disabled"]}]
    }
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    # webhooks/observability.py builds the Tracer (and imports the X-Ray SDK) only when "false"
    assert env["POWERTOOLS_TRACE_DISABLED"] == {"Fn::If": ["TracingOn", "false", "true"]}
    assert template["Resources"]["TracingLayer"]["Condition"] == "TracingOn"
    assert template["Resources"]["WebhooksApi"]["Properties"]["TracingEnabled"] == {
        "Fn::If": ["TracingOn", True, False]
    }
    resources = translated["Resources"]
    [tracing_layer] = [k for k in resources if k.startswith("TracingLayer")]
    for function, role in zip(FUNCTIONS, ROLES, strict=True):
        props = resources[function]["Properties"]
        assert "TracingConfig" not in props  # the default, Disabled: no X-Ray at all
        assert props["Layers"][1] == {
            "Fn::If": ["TracingOn", {"Ref": tracing_layer}, {"Ref": "AWS::NoValue"}]
        }
        xray = [p for p in resources[role]["Properties"]["ManagedPolicyArns"] if "AWSXRay" in json.dumps(p)]
        assert [p["Fn::If"][0] for p in xray] == ["TracingOn"]
    for mode in ("Active", "PassThrough"):
        on = json.loads(run_tools_python(TRANSLATE, json.dumps({"Tracing": mode})))["Resources"]
        assert all(on[f]["Properties"]["TracingConfig"] == {"Mode": {"Ref": "Tracing"}} for f in FUNCTIONS)


def version_ids(parameters: dict[str, str], rebuilt_common_layer: bool = False) -> dict[str, str]:
    code = TRANSLATE
    if rebuilt_common_layer:  # `sam deploy` uploads a rebuilt layer under a new key; the code is the same
        code = code.replace(
            "parameters = ",
            'template["Resources"]["CommonLayer"]["Properties"]["ContentUri"] = "s3://artifacts/rebuilt.zip"\n'
            "parameters = ",
        )
    resources = json.loads(run_tools_python(code, json.dumps(parameters)))["Resources"]
    return {f: next(k for k in resources if k.startswith(f"{f}Version")) for f in FUNCTIONS}


def test_a_new_layer_or_tracing_mode_publishes_new_versions_for_the_live_alias(
    template: dict[str, Any],
) -> None:
    assert all(
        template["Resources"][f]["Properties"]["AutoPublishAliasAllProperties"] is True for f in FUNCTIONS
    )
    assert all(
        template["Resources"][k]["Properties"]["PublishLambdaVersion"]
        for k in ("CommonLayer", "TracingLayer")
    )
    before = version_ids({})
    assert version_ids({}) == before  # nothing changed: no new version
    changed = [version_ids({"Tracing": "Active"}), version_ids({}, rebuilt_common_layer=True)]
    for after in changed:
        assert all(after[f] != before[f] for f in FUNCTIONS)
