"""IAM by execution: every AWS call each function makes is allowed by its role in the template.

``CALLS`` lists, per function, each AWS call its code makes (and those Lambda's SQS event
source makes on its behalf). Two checks hold it to the truth:
- the roles of the template as SAM translates it (samtranslator) allow every listed call,
  judged by moto's IAM policy evaluation on the resolved ARNs;
- each handler, run through its paths (happy, failing, dead-lettering, deferring, database
  away) against moto's server, makes no AWS call that is not listed: a new call fails here
  until it is listed, and then the first check asks the role for it.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.client
import pytest
from aws_lambda_powertools.utilities import parameters
from moto.iam.access_control import IAMPolicy, PermissionResult
from pymongo import MongoClient

from webhooks import queues
from webhooks.models import DeliveryMessage, Event, new_event_id, to_json, utc_timestamp
from webhooks.partners.store import PartnerStore
from webhooks.store import mongo
from webhooks_cli.lambdas import LambdaContext, load_handler

from deploy.samcli import REGION, TOOLS, aws_client
from support import Receiver, Reply, api_event, receive, sqs_event

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's
MONGO_PARAMETER = "/webhooks/mongo-uri"  # the template's default MongoUriParameterName
QUEUE_KEYS = {
    "EventsQueue": "EVENTS_QUEUE_URL",
    "EventsDLQ": "EVENTS_DLQ_URL",
    "DeliveryQueue": "DELIVERY_QUEUE_URL",
    "DeliveryDLQ": "DELIVERY_DLQ_URL",
}
SSM = ("ssm:GetParameter", "parameter:mongo-uri")
# what Lambda's SQS event source mapping calls with the function's role
EVENT_SOURCE = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
CALLS: dict[str, set[tuple[str, str]]] = {
    "ingest": {
        ("sqs:SendMessage", "EventsQueue"),  # envelopes (SendMessage, or SendMessageBatch when split)
        ("sqs:SendMessage", "DeliveryQueue"),  # replay, recover, test events, parked deliveries
        SSM,
    },
    "dispatch": {
        *((action, "EventsQueue") for action in EVENT_SOURCE),
        ("sqs:SendMessage", "DeliveryQueue"),  # fan-out
        ("sqs:SendMessage", "EventsDLQ"),  # unreadable envelopes
        ("sqs:SendMessage", "EventsQueue"),  # the rest of an envelope fanned out part-way
        ("sqs:ChangeMessageVisibility", "EventsQueue"),  # backoff while MongoDB is away
        SSM,
    },
    "deliver": {
        *((action, "DeliveryQueue") for action in EVENT_SOURCE),
        ("sqs:ChangeMessageVisibility", "DeliveryQueue"),  # backoff
        ("sqs:SendMessage", "DeliveryDLQ"),  # dead letters
        ("sqs:SendMessage", "DeliveryQueue"),  # deferred and not-started deliveries
        ("sqs:SendMessage", "EventsQueue"),  # endpoint.disabled events
        SSM,
    },
}
FUNCTIONS = {"ingest": "IngestFunction", "dispatch": "DispatchFunction", "deliver": "DeliverFunction"}
BATCH_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage"}
BATCH_ACTIONS["ChangeMessageVisibilityBatch"] = "ChangeMessageVisibility"


# --- the roles, as deployed -------------------------------------------------------


# samtranslator lives beside the SAM CLI (.venv-tools): it pins its own pydantic
TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:  # the template's roles are explicit: no managed policy lookups
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1]).read())
for logical_id, resource in template["Resources"].items():  # as `sam package` rewrites them
    for key in ("CodeUri", "ContentUri"):
        if key in resource.get("Properties", {}):
            resource["Properties"][key] = f"s3://artifacts/{logical_id}.zip"
print(json.dumps(transform(template, {}, NoManagedPolicies())))
"""


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    done = subprocess.run(
        [str(TOOLS / "bin" / "python"), "-c", TRANSLATE, str(ROOT / "infra" / "template.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"AWS_DEFAULT_REGION": REGION, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def resolve(value: Any, template: dict[str, Any], names: dict[str, str]) -> Any:
    """The intrinsic functions a role policy uses, with the queues named by ``names``."""
    pseudo = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    params = {k: v.get("Default") for k, v in template.get("Parameters", {}).items()}
    if isinstance(value, list):
        resolved = [resolve(v, template, names) for v in value]
        return [v for v in resolved if v != NO_VALUE]
    if not isinstance(value, dict):
        return value
    if "Fn::If" in value:  # a statement under a condition, judged with the default parameters
        condition, when_true, when_false = value["Fn::If"]
        chosen = when_true if holds(template["Conditions"][condition], params) else when_false
        return resolve(chosen, template, names)
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", value
        return queue_arn(names[logical_id])
    if "Ref" in value:
        if value["Ref"] == NO_VALUE:
            return NO_VALUE
        return pseudo.get(value["Ref"], params.get(value["Ref"]))
    if "Fn::Sub" in value:
        text = value["Fn::Sub"]
        for key, replacement in {**pseudo, **params}.items():
            text = text.replace("${" + key + "}", str(replacement))
        assert "${" not in text, text
        return text
    return {k: resolve(v, template, names) for k, v in value.items()}


NO_VALUE = "AWS::NoValue"


def holds(condition: Any, params: dict[str, Any]) -> Any:
    """The condition functions the template's Conditions use, on parameter values."""
    if isinstance(condition, list):
        return [holds(c, params) for c in condition]
    if not isinstance(condition, dict):
        return condition
    [(function, argument)] = condition.items()
    if function == "Ref":
        return params[argument]
    values = holds(argument, params)
    if function == "Fn::Equals":
        return str(values[0]) == str(values[1])
    if function == "Fn::Not":
        return not values[0]
    if function == "Fn::Join":
        return values[0].join(values[1])
    raise AssertionError(f"unexpected {function}")


def role_policies(template: dict[str, Any], function: str, names: dict[str, str]) -> list[IAMPolicy]:
    resources = template["Resources"]
    role_id = resources[FUNCTIONS[function]]["Properties"]["Role"]["Fn::GetAtt"][0]
    documents = [p["PolicyDocument"] for p in resources[role_id]["Properties"].get("Policies", [])]
    return [IAMPolicy(json.dumps(resolve(d, template, names))) for d in documents]


def allowed(policies: list[IAMPolicy], action: str, resource: str) -> bool:
    results = [p.is_action_permitted(action, resource) for p in policies]
    return PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results


def resource_arn(target: str, names: dict[str, str]) -> str:
    if target == SSM[1]:
        return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{MONGO_PARAMETER}"
    return queue_arn(names[target])


IDENTITY = {logical_id: logical_id for logical_id in QUEUE_KEYS}


@pytest.mark.parametrize("function", sorted(CALLS))
def test_the_role_allows_every_call_the_function_makes(translated: dict[str, Any], function: str) -> None:
    policies = role_policies(translated, function, IDENTITY)
    refused = [
        (action, target)
        for action, target in sorted(CALLS[function])
        if not allowed(policies, action, resource_arn(target, IDENTITY))
    ]
    assert not refused, f"{function}'s role does not allow {refused}"


def test_the_event_sources_read_the_queues_the_roles_allow(translated: dict[str, Any]) -> None:
    mappings = [
        r["Properties"]
        for r in translated["Resources"].values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    ]
    sources = {m["FunctionName"]["Ref"]: m["EventSourceArn"]["Fn::GetAtt"][0] for m in mappings}
    # the pollers invoke each function's `live` alias (AutoPublishAlias), with the function's role
    assert sources == {
        "DispatchFunctionAliaslive": "EventsQueue",
        "DeliverFunctionAliaslive": "DeliveryQueue",
    }
    for mapping in mappings:
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_the_roles_are_least_privilege(translated: dict[str, Any]) -> None:
    """The evaluation can say no: what a function does not need, its role refuses."""
    refusals = {
        "ingest": [("sqs:SendMessage", "DeliveryDLQ"), ("sqs:ReceiveMessage", "EventsQueue")],
        "dispatch": [("sqs:SendMessage", "DeliveryDLQ"), ("sqs:ChangeMessageVisibility", "DeliveryQueue")],
        "deliver": [("sqs:SendMessage", "EventsDLQ"), ("sqs:DeleteMessage", "EventsQueue")],
    }
    for function, calls in refusals.items():
        policies = role_policies(translated, function, IDENTITY)
        for action, target in calls:
            assert not allowed(policies, action, resource_arn(target, IDENTITY)), (function, action, target)
        assert not allowed(policies, "ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/other")


# --- the calls, as made ------------------------------------------------------------


class Recorder:
    """Every AWS API call made in the process, as (IAM action, target)."""

    def __init__(self, queue_names: dict[str, str]) -> None:
        self.queue_names = queue_names  # logical id -> this test's queue name
        self.by_name = {name: logical_id for logical_id, name in queue_names.items()}
        self.calls: set[tuple[str, str]] = set()
        self.active = False  # the test's own calls (setup, reading queues) are not the function's

    @contextlib.contextmanager
    def on(self) -> Iterator[None]:
        self.active = True
        try:
            yield
        finally:
            self.active = False

    def record(self, client: Any, operation: str, params: dict[str, Any]) -> None:
        if not self.active:
            return
        prefix = client.meta.service_model.signing_name
        action = f"{prefix}:{BATCH_ACTIONS.get(operation, operation)}"
        if prefix == "sqs" and "QueueUrl" in params:
            target = self.by_name.get(params["QueueUrl"].rsplit("/", 1)[-1], params["QueueUrl"])
        elif prefix == "ssm" and params.get("Name") == MONGO_PARAMETER:
            target = SSM[1]
        else:
            target = json.dumps(params, default=str)[:200]
        self.calls.add((action, target))


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, aws_emulator: str) -> Recorder:
    names = {logical_id: f"iam{uuid.uuid4().hex[:8]}-{logical_id}" for logical_id in QUEUE_KEYS}
    recorder = Recorder(names)
    original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009  # private: no stub

    def recording(self: Any, operation: str, params: dict[str, Any]) -> Any:
        recorder.record(self, operation, params)
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return recorder


@pytest.fixture
def aws(
    aws_emulator: str, mongo_uri: str, monkeypatch: pytest.MonkeyPatch, recorder: Recorder
) -> Iterator[dict[str, Any]]:
    """Queues named like the template's, the Mongo URI in SSM, and the functions' environment."""
    sqs = aws_client("sqs", aws_emulator)
    urls = {
        QUEUE_KEYS[logical_id]: sqs.create_queue(QueueName=name)["QueueUrl"]
        for logical_id, name in recorder.queue_names.items()
    }
    aws_client("ssm", aws_emulator).put_parameter(
        Name=MONGO_PARAMETER, Value=mongo_uri, Type="SecureString", Overwrite=True
    )
    db_name = f"iam_{uuid.uuid4().hex[:10]}"
    env = {
        "AWS_ENDPOINT_URL": aws_emulator,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "MONGO_URI_PARAMETER": MONGO_PARAMETER,
        "MONGO_DB_NAME": db_name,
        "ALLOW_PRIVATE_DESTINATIONS": "true",
        "CACHE_TTL_SECONDS": "0",
        "WEBHOOK_RETRY_DELAY": "1000",
        "WEBHOOK_TIMEOUT": "2000",
        "WEBHOOK_MAX_ATTEMPTS": "2",
        "ENDPOINT_DISABLE_AFTER_FAILURES": "2",
        "ENDPOINT_DISABLE_AFTER_SECONDS": "0",
        "ADMIN_API_KEY": "iam-admin",
        "POWERTOOLS_METRICS_DISABLED": "true",
        **urls,
    }
    monkeypatch.delenv("MONGO_URI", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client: MongoClient[Any] = MongoClient(mongo_uri, tz_aware=True)
    fresh_process_state()
    yield {"sqs": sqs, "urls": urls, "db": client[db_name]}
    fresh_process_state()
    client.drop_database(db_name)
    client.close()
    for url in urls.values():
        sqs.delete_queue(QueueUrl=url)


def fresh_process_state() -> None:
    """What a new Lambda instance starts without: clients, cached parameters, loaded handlers."""
    for name in FUNCTIONS:
        sys.modules.pop(f"webhooks_function_{name}", None)
    queues._clients.clear()
    mongo.close_all()
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    getattr(parameters.base, "DEFAULT_PROVIDERS").clear()  # noqa: B009  # private: not exported


def handler(recorder: Recorder, name: str, seconds: float = 30) -> Callable[[dict[str, Any]], Any]:
    """Load (a cold start) and invoke a handler, its AWS calls recorded."""
    with recorder.on():
        loaded = load_handler(name)

    def invoke(event: dict[str, Any]) -> Any:
        with recorder.on():
            return loaded(event, LambdaContext(name, seconds))

    return invoke


def delivery_body(partner_id: str) -> str:
    event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={"n": 1})
    return to_json(DeliveryMessage(partnerId=partner_id, event=event).model_dump())


def assert_listed(function: str, recorder: Recorder, must_include: set[tuple[str, str]]) -> None:
    unlisted = recorder.calls - CALLS[function]
    assert not unlisted, (
        f"{function} made calls that CALLS does not list (and its role may refuse): {unlisted}"
    )
    assert must_include <= recorder.calls, f"not exercised: {must_include - recorder.calls}"


def test_ingest_makes_only_the_listed_calls(aws: dict[str, Any], recorder: Recorder) -> None:
    store = PartnerStore(aws["db"], cache_ttl=0)
    store.ensure_indexes()
    created = store.create("iam-ingest", "http://127.0.0.1:9/hook", ["order.*"])
    ingest = handler(recorder, "ingest")
    small = json.dumps([{"eventType": "order.created", "data": {"n": 1}}])
    assert ingest(api_event(small, created.api_key))["statusCode"] == 202
    # over one message's size: split into envelopes sent in one batch
    large = json.dumps([{"eventType": "order.created", "data": {"pad": "x" * 100_000}} for _ in range(4)])
    assert ingest(api_event(large, created.api_key))["statusCode"] == 202
    test_event = api_event(
        None, path=f"/api/v1/admin/partners/{created.partner.id}/test", headers={"X-Admin-Key": "iam-admin"}
    )
    assert ingest(test_event)["statusCode"] == 202
    assert_listed(
        "ingest",
        recorder,
        {("sqs:SendMessage", "EventsQueue"), ("sqs:SendMessage", "DeliveryQueue"), SSM},
    )


def test_dispatch_makes_only_the_listed_calls(aws: dict[str, Any], recorder: Recorder) -> None:
    store = PartnerStore(aws["db"], cache_ttl=0)
    store.ensure_indexes()
    store.create("iam-dispatch", "http://127.0.0.1:9/hook", ["order.*"])
    sqs, events = aws["sqs"], aws["urls"]["EVENTS_QUEUE_URL"]
    envelope = {"events": [{"eventId": new_event_id(), "eventType": "order.created",
                            "timestamp": utc_timestamp(), "data": {"n": 1}}]}  # fmt: skip
    sqs.send_message(QueueUrl=events, MessageBody=json.dumps(envelope))
    sqs.send_message(QueueUrl=events, MessageBody="not an envelope")
    assert handler(recorder, "dispatch")(sqs_event(receive(sqs, events, 2), events)) == {
        "batchItemFailures": []
    }

    # MongoDB away: the batch is backed off with ChangeMessageVisibility
    fresh_process_state()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MONGO_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
        sqs.send_message(QueueUrl=events, MessageBody=json.dumps(envelope))
        result = handler(recorder, "dispatch")(sqs_event(receive(sqs, events, 1), events))
    assert len(result["batchItemFailures"]) == 1
    assert_listed(
        "dispatch",
        recorder,
        {
            ("sqs:SendMessage", "DeliveryQueue"),
            ("sqs:SendMessage", "EventsDLQ"),
            ("sqs:ChangeMessageVisibility", "EventsQueue"),
            SSM,
        },
    )


def test_deliver_makes_only_the_listed_calls(aws: dict[str, Any], recorder: Recorder) -> None:
    sqs, queue = aws["sqs"], aws["urls"]["DELIVERY_QUEUE_URL"]
    failing, healthy = Receiver([Reply(500)]), Receiver()
    try:
        store = PartnerStore(aws["db"], cache_ttl=0)
        store.ensure_indexes()
        failing_id = store.create("iam-failing", failing.url, ["order.*"]).partner.id
        healthy_id = store.create("iam-healthy", healthy.url, ["order.*"]).partner.id
        deliver = handler(recorder, "deliver")
        # attempt 1 fails: its retry re-sent to the queue with a DelaySeconds
        sqs.send_message(QueueUrl=queue, MessageBody=delivery_body(failing_id))
        first = receive(sqs, queue, 1)
        assert deliver(sqs_event(first, queue)) == {"batchItemFailures": []}
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=first[0]["ReceiptHandle"])
        # attempt 2 (the last) fails: dead-lettered, the endpoint disabled and announced
        second = receive(sqs, queue, 1, timeout=5)
        assert DeliveryMessage.model_validate_json(second[0]["Body"]).priorAttempts == 1
        assert deliver(sqs_event(second, queue)) == {"batchItemFailures": []}
        # a copy back before its notBefore extends its own visibility, without a POST
        early = DeliveryMessage.model_validate_json(delivery_body(healthy_id))
        early = early.model_copy(update={"notBefore": time.time() + 3600})
        sqs.send_message(QueueUrl=queue, MessageBody=early.as_body())
        assert len(deliver(sqs_event(receive(sqs, queue, 1), queue))["batchItemFailures"]) == 1
        # too little time left to start the POST: put back on the queue, unattempted
        sqs.send_message(QueueUrl=queue, MessageBody=delivery_body(healthy_id))
        short = handler(recorder, "deliver", seconds=1.0)
        assert short(sqs_event(receive(sqs, queue, 1), queue)) == {"batchItemFailures": []}
        assert healthy.requests == []
    finally:
        failing.close()
        healthy.close()
    assert_listed(
        "deliver",
        recorder,
        {
            ("sqs:ChangeMessageVisibility", "DeliveryQueue"),
            ("sqs:SendMessage", "DeliveryDLQ"),
            ("sqs:SendMessage", "DeliveryQueue"),
            ("sqs:SendMessage", "EventsQueue"),
            SSM,
        },
    )
