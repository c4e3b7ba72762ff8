"""The ingest handler with real API Gateway proxy events, moto's SQS server and SecantusDB."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from webhooks.models import EventEnvelope

from conftest import Stack
from support import api_event, drain

SAMPLE = [
    {"eventType": "order.created", "data": {"orderId": "1234", "total": 99.99}},
    {"eventType": "order.updated", "data": {"orderId": "1234", "status": "shipped"}},
    {"eventType": "customer.created", "data": {"customerId": "cust_42"}},
]


@pytest.fixture
def ingest(stack: Stack, function: Any) -> Any:
    handler = function("ingest")

    def call(event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
        result = handler(event, None)
        return result["statusCode"], json.loads(result["body"]), result

    return call


@pytest.fixture
def api_key(stack: Stack) -> str:
    return stack.store().create("Producer", "https://p.example/h", []).api_key


def envelopes(stack: Stack) -> list[EventEnvelope]:
    return [
        EventEnvelope.model_validate_json(m["Body"]) for m in drain(stack.sqs, stack.url("EVENTS_QUEUE_URL"))
    ]


def test_202_body_as_the_contract_and_one_envelope_in_the_queue(
    stack: Stack, ingest: Any, api_key: str
) -> None:
    status, body, raw = ingest(api_event(json.dumps(SAMPLE), api_key))
    assert status == 202
    assert raw["multiValueHeaders"]["Content-Type"] == ["application/json"]
    assert body["message"] == "All 3 events successfully enqueued"
    assert [set(r) for r in body["results"]] == [{"eventId", "eventType", "status"}] * 3
    assert [r["eventType"] for r in body["results"]] == [e["eventType"] for e in SAMPLE]
    assert all(
        re.fullmatch(r"event_[0-9a-f]{24}", r["eventId"]) and r["status"] == "success"
        for r in body["results"]
    )

    queued = envelopes(stack)
    assert len(queued) == 1  # one SQS message for the whole request
    envelope = queued[0]
    assert envelope.version == 1
    assert [e.eventId for e in envelope.events] == [r["eventId"] for r in body["results"]]
    assert [e.data for e in envelope.events] == [e["data"] for e in SAMPLE]
    assert len({e.timestamp for e in envelope.events}) == 1
    assert api_key not in json.dumps(envelope.model_dump())


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{not json", "Invalid request body. Errors: body: Malformed JSON"),
        (
            '{"eventType": "a.b", "data": {}}',
            "Invalid request body. Errors: body: Input should be a valid list",
        ),
        ("[]", "Invalid request body. Errors: body: must contain at least 1 event"),
        (
            '[{"eventType": "a.b", "data": {}}, {"eventType": 7, "data": {}}]',
            "Invalid request body. Errors: [1].eventType: Input should be a valid string",
        ),
        (
            '[{"eventType": "a.b", "data": [1]}]',
            "Invalid request body. Errors: [0].data: Input should be a valid dictionary",
        ),
        (
            '[{"eventType": "Order Created", "data": {}}]',
            "Invalid request body. Errors: [0].eventType: String should match pattern",
        ),
        ('[{"data": {}}]', "Invalid request body. Errors: [0].eventType: Field required"),
        (None, "Invalid request body. Errors: body: Malformed JSON"),
        ("[NaN]", "Invalid request body. Errors: body: NaN is not valid JSON"),
    ],
)
def test_400_names_the_problem_and_enqueues_nothing(
    stack: Stack, ingest: Any, api_key: str, body: str | None, expected: str
) -> None:
    status, reply, _ = ingest(api_event(body, api_key))
    assert status == 400
    assert reply["error"].startswith(expected), reply
    assert envelopes(stack) == []


def test_more_than_batch_size_events_is_400(stack: Stack, ingest: Any, api_key: str) -> None:
    status, reply, _ = ingest(api_event(json.dumps([SAMPLE[0]] * 101), api_key))
    assert status == 400 and "at most 100 events (got 101)" in reply["error"]
    assert envelopes(stack) == []


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (None, "API key is required"),
        ("", "API key is required"),
        ("nope", "Invalid API key or inactive partner"),
    ],
)
def test_401_without_a_valid_key_even_for_a_bad_body(
    stack: Stack, ingest: Any, key: str | None, message: str
) -> None:
    for body in (json.dumps(SAMPLE), "{broken"):
        status, reply, _ = ingest(api_event(body, key))
        assert (status, reply) == (401, {"error": message})
    assert envelopes(stack) == []


def test_an_unknown_query_parameter_is_a_400_only_once_the_key_is_known(
    stack: Stack, ingest: Any, api_key: str
) -> None:
    def with_query(key: str | None) -> dict[str, Any]:
        event = api_event(json.dumps(SAMPLE), key)
        event["queryStringParameters"] = {"x": "1"}
        event["multiValueQueryStringParameters"] = {"x": ["1"]}
        return event

    assert ingest(with_query(None))[:2] == (401, {"error": "API key is required"})
    assert ingest(with_query("nope"))[:2] == (401, {"error": "Invalid API key or inactive partner"})
    status, reply, _ = ingest(with_query(api_key))
    assert (status, reply) == (400, {"error": "Invalid query. Errors: x: Extra inputs are not permitted"})
    assert envelopes(stack) == []


def test_an_event_without_the_callers_identity_is_served(stack: Stack, ingest: Any, api_key: str) -> None:
    # a hand-written test event (the Lambda console's, a bench's) may leave it out
    event = api_event(json.dumps(SAMPLE), api_key)
    del event["requestContext"]["identity"]
    assert ingest(event)[0] == 202
    assert ingest(api_event(json.dumps(SAMPLE), "wrong") | {"requestContext": {}})[0] == 401


def test_401_for_a_deactivated_partner(stack: Stack, ingest: Any) -> None:
    store = stack.store()
    created = store.create("Old", "https://o.example", [])
    store.set_active(created.partner.id, False)
    status, reply, _ = ingest(api_event(json.dumps(SAMPLE), created.api_key))
    assert (status, reply["error"]) == (401, "Invalid API key or inactive partner")


def test_header_names_are_case_insensitive(stack: Stack, ingest: Any, api_key: str) -> None:
    event = api_event(json.dumps(SAMPLE), None, headers={"x-api-key": api_key})
    assert ingest(event)[0] == 202


def test_413_for_a_body_over_the_limit_and_for_one_huge_event(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch, api_key: str
) -> None:
    monkeypatch.setenv("MAX_BODY_BYTES", "300000")
    handler = function("ingest")
    big = json.dumps([{"eventType": "a.b", "data": {"x": "y" * 300_000}}])
    result = handler(api_event(big, api_key), None)
    assert result["statusCode"] == 413 and "Request body too large" in json.loads(result["body"])["error"]
    one_huge = json.dumps(
        [{"eventType": "a.b", "data": {}}, {"eventType": "a.b", "data": {"x": "y" * 270_000}}]
    )
    result = handler(api_event(one_huge, api_key), None)
    assert result["statusCode"] == 413
    assert "Event [1]" in json.loads(result["body"])["error"]
    assert envelopes(stack) == []


def test_a_batch_too_large_for_one_message_is_split_and_all_enqueued(
    stack: Stack, ingest: Any, api_key: str
) -> None:
    batch = [{"eventType": "a.b", "data": {"n": i, "pad": "x" * 60_000}} for i in range(10)]
    status, body, _ = ingest(api_event(json.dumps(batch), api_key))
    assert status == 202
    queued = envelopes(stack)
    assert len(queued) == 3  # 4 events of ~60 KB per 256 KiB message
    assert sorted(e.eventId for env in queued for e in env.events) == sorted(
        r["eventId"] for r in body["results"]
    )


def test_207_lists_exactly_the_events_that_are_in_the_queue(
    stack: Stack, function: Any, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = function("ingest")
    import sys

    queue = sys.modules["webhooks_function_ingest"].services.events.ingestor.queue
    real_send_batch = queue.send_batch

    def flaky_send_batch(messages: Any) -> list[str]:
        # SQS rejects the entry holding event 5, every time; the rest go through for real
        keep = [m for m in messages if '"n":5,' not in m.body]
        failed: list[str] = real_send_batch(keep)
        return failed + [m.id for m in messages if m not in keep]

    monkeypatch.setattr(queue, "send_batch", flaky_send_batch)
    batch = [{"eventType": "a.b", "data": {"n": i, "pad": "x" * 60_000}} for i in range(10)]
    result = handler(api_event(json.dumps(batch), api_key), None)
    body = json.loads(result["body"])
    assert result["statusCode"] == 207
    assert body["message"].startswith("Some events failed to enqueue: ")
    in_queue = {e.eventId for env in envelopes(stack) for e in env.events}
    reported_ok = {r["eventId"] for r in body["results"] if r["status"] == "success"}
    assert reported_ok == in_queue
    assert len(in_queue) == 6  # the envelope with event 5 held 4 events
    assert all(r["error"] for r in body["results"] if r["status"] == "failed")


def test_queue_endpoint_down_is_503_never_202(
    stack: Stack, function: Any, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("EVENTS_QUEUE_URL", "http://127.0.0.1:9/000000000000/nowhere")
    handler = function("ingest")
    result = handler(api_event(json.dumps(SAMPLE), api_key), None)
    body = json.loads(result["body"])
    assert result["statusCode"] == 503
    assert {r["status"] for r in body["results"]} == {"failed"}
    assert "127.0.0.1:9" not in result["body"]  # no internals


def test_database_down_is_503_with_a_clear_error(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONGO_URI", "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
    handler = function("ingest")
    result = handler(api_event(json.dumps(SAMPLE), "some-key"), None)
    assert result["statusCode"] == 503
    assert json.loads(result["body"]) == {"error": "Service temporarily unavailable, please retry"}
    assert envelopes(stack) == []


def test_idempotency_key_replays_the_first_response_and_enqueues_nothing(
    stack: Stack, ingest: Any, api_key: str
) -> None:
    headers = {"Idempotency-Key": "order-1234-attempt"}
    first = ingest(api_event(json.dumps(SAMPLE), api_key, headers=headers))
    assert first[0] == 202
    assert len(envelopes(stack)) == 1
    again = ingest(api_event(json.dumps(SAMPLE), api_key, headers=headers))
    assert again[:2] == first[:2]  # same status, same eventIds
    assert envelopes(stack) == []
    different = ingest(api_event(json.dumps(SAMPLE[:1]), api_key, headers=headers))
    assert different[0] == 422 and "different request body" in different[1]["error"]
    # the same key from another partner is another key
    other = stack.store().create("Other", "https://o.example", []).api_key
    assert ingest(api_event(json.dumps(SAMPLE), other, headers=headers))[0] == 202
    ttl_index = {i["name"]: i for i in stack.db.idempotencyKeys.list_indexes()}["expiresAt_1"]
    assert ttl_index["expireAfterSeconds"] == 0
    stored = stack.db.idempotencyKeys.find_one({})
    assert "order-1234-attempt" not in str(stored)  # keys are stored hashed with the partner id


def test_idempotency_key_of_a_failed_request_can_be_retried(
    stack: Stack, function: Any, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = function("ingest")
    import sys

    queue = sys.modules["webhooks_function_ingest"].services.events.ingestor.queue
    real_send = queue.send

    def down(*args: Any, **kwargs: Any) -> str:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")

    monkeypatch.setattr(queue, "send", down)
    headers = {"Idempotency-Key": "k1"}
    assert handler(api_event(json.dumps(SAMPLE), api_key, headers=headers), None)["statusCode"] == 503
    monkeypatch.setattr(queue, "send", real_send)
    assert handler(api_event(json.dumps(SAMPLE), api_key, headers=headers), None)["statusCode"] == 202
    assert len(envelopes(stack)) == 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/events", 405),
        ("DELETE", "/api/v1/events", 405),
        ("GET", "/nope", 404),
        ("POST", "/health", 405),
    ],
)
def test_wrong_method_or_path_is_json(stack: Stack, ingest: Any, method: str, path: str, status: int) -> None:
    code, body, raw = ingest(api_event(None, method=method, path=path))
    assert code == status and "error" in body


@pytest.mark.parametrize("path", ["/health", "/api/v1/health"])
def test_health(stack: Stack, ingest: Any, path: str) -> None:
    assert ingest(api_event(None, method="GET", path=path))[:2] == (200, {"status": "ok"})


def test_unexpected_errors_are_500_without_details(
    stack: Stack,
    function: Any,
    api_key: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = function("ingest")
    import sys

    module = sys.modules["webhooks_function_ingest"]

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(module.services.events, "post_events", boom)
    result = handler(api_event(json.dumps(SAMPLE), api_key), None)
    assert result["statusCode"] == 500
    assert json.loads(result["body"]) == {"error": "Internal server error"}
    assert "secret internal detail" in caplog.text  # logged, not returned


def test_the_api_key_never_reaches_the_logs(
    stack: Stack,
    ingest: Any,
    api_key: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ingest(api_event(json.dumps(SAMPLE), api_key))
    ingest(api_event("{bad", api_key))
    ingest(api_event(json.dumps(SAMPLE), api_key + "x"))
    out = capfd.readouterr()
    assert "events enqueued" in caplog.text
    assert api_key not in out.out + out.err + caplog.text


def test_the_app_serves_its_openapi_document(stack: Stack, ingest: Any) -> None:
    from webhooks.api import openapi_document

    status, body, _ = ingest(api_event(None, method="GET", path="/api/v1/openapi.json"))
    assert status == 200 and body == json.loads(json.dumps(openapi_document()))
