"""Regression tests for the adversarial probe's findings (see docs/RELIABILITY.md, Security).

Each test is named after what it proves; the handlers run against moto's SQS server,
SecantusDB and real HTTP receivers. The probe's own commands are replayed end to end
through `webhooks local` in tests/e2e/test_probe_e2e.py.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from bson import ObjectId

from webhooks.delivery.ssrf import is_public_address
from webhooks.models import DeliveryMessage
from webhooks.partners.cache import REVISION_CHECK_SECONDS
from webhooks.partners.store import PartnerStore

from conftest import Delivery, Stack
from support import Receiver, Reply, api_event, drain, receive

ADMIN_KEY = "probe-admin"


@pytest.fixture
def api(stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The ingest handler, loaded at the first call (so a test may set variables first):
    call(method, path, body, headers, query=..., source_ip=...) -> (status, body, headers)."""
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    loaded: list[Any] = []

    def call(
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        source_ip: str = "203.0.113.10",
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not loaded:
            loaded.append(function("ingest"))
        event = api_event(
            json.dumps(body) if body is not None else None,
            method=method,
            path=path,
            headers={"X-Admin-Key": ADMIN_KEY, **(headers or {})},
        )
        event["queryStringParameters"] = query
        event["requestContext"]["identity"]["sourceIp"] = source_ip
        result = loaded[0](event)
        reply_headers = dict(result.get("headers") or {})
        reply_headers.update({k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()})
        return result["statusCode"], json.loads(result["body"]), reply_headers

    return call


def produce(api: Any, key: str, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    status, body, _ = api("POST", "/api/v1/events", events, headers={"X-API-Key": key})
    return status, body


def queued(stack: Stack, name: str = "EVENTS_QUEUE_URL") -> list[dict[str, Any]]:
    return drain(stack.sqs, stack.url(name))


# --- high: forged platform events ----------------------------------------------------------


def test_no_producer_key_can_publish_the_platforms_own_event_types(stack: Stack, api: Any) -> None:
    key = stack.store().create("producer", "https://p.example/h", []).api_key
    for event_type in ("endpoint.disabled", "webhook.test", "endpoint.anything"):
        status, body = produce(
            api, key, [{"eventType": "order.created", "data": {}}, {"eventType": event_type, "data": {}}]
        )
        assert status == 403, body
        assert body == {"error": f"Forbidden: event type {event_type!r} is reserved for the platform"}
    assert queued(stack) == []  # the valid event in the same batch was not enqueued either


def test_publish_scopes_limit_what_a_key_may_publish_and_null_removes_them(stack: Stack, api: Any) -> None:
    created = stack.store().create("scoped", "https://p.example/h", [])
    path = f"/api/v1/admin/partners/{created.partner.id}"
    status, view, _ = api("PATCH", path, {"publishScopes": ["order.*", "cart.updated"]})
    assert status == 200 and view["publishScopes"] == ["order.*", "cart.updated"]
    assert produce(api, created.api_key, [{"eventType": "order.paid", "data": {}}])[0] == 202
    assert produce(api, created.api_key, [{"eventType": "cart.updated", "data": {}}])[0] == 202
    status, body = produce(api, created.api_key, [{"eventType": "cart.created", "data": {}}])
    assert status == 403 and "may not publish event type 'cart.created'" in body["error"]
    assert api("PATCH", path, {"publishScopes": ["endpoint.*"]})[0] == 200
    assert produce(api, created.api_key, [{"eventType": "endpoint.disabled", "data": {}}])[0] == 403
    status, view, _ = api("PATCH", path, {"publishScopes": None})
    assert status == 200 and view["publishScopes"] is None
    assert produce(api, created.api_key, [{"eventType": "cart.created", "data": {}}])[0] == 202
    assert api("PATCH", path, {"publishScopes": []})[0] == 400  # an empty scope list is a mistake
    assert len(queued(stack)) == 3


# --- high: schema $ref fetching ------------------------------------------------------------


def test_schema_refs_outside_the_schema_are_refused_and_never_fetched(stack: Stack, api: Any) -> None:
    target = Receiver([Reply(200, body=b'{"type": "string"}')])
    try:
        for ref in (
            target.url,
            "file:///etc/passwd",
            "other.json",
            "https://json-schema.org/draft/2020-12/schema",
        ):
            schema = {"type": "object", "properties": {"x": {"$ref": ref}}}
            status, body, _ = api("PUT", "/api/v1/admin/event-types/order.created", {"schema": schema})
            assert status == 400 and "points outside the schema" in body["error"], body
        local = {
            "type": "object",
            "$defs": {"id": {"type": "string"}},
            "properties": {"x": {"$ref": "#/$defs/id"}},
        }
        assert api("PUT", "/api/v1/admin/event-types/order.created", {"schema": local})[0] == 200
        key = stack.store().create("p", "https://p.example/h", []).api_key
        status, body = produce(api, key, [{"eventType": "order.created", "data": {"x": 5}}])
        assert status == 400 and "[0].data.x: 5 is not of type 'string'" in body["error"]
        # a schema stored before these checks (written straight to the database) is not
        # fetched either: the event is refused with a 400, not a 500
        stack.db["eventTypes"].insert_one(
            {"_id": "order.paid", "schema": {"properties": {"x": {"$ref": target.url}}}}
        )
        status, body = produce(api, key, [{"eventType": "order.paid", "data": {"x": 1}}])
        assert status == 400 and "schema cannot be applied" in body["error"], body
        assert "root:" not in body["error"]
        assert target.requests == []
    finally:
        target.close()


def test_schemas_too_large_or_too_deep_are_refused_with_a_400(api: Any) -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(400):
        deep = {"type": "object", "properties": {"a": deep}}
    status, body, _ = api("PUT", "/api/v1/admin/event-types/deep.one", {"schema": deep})
    assert status == 400 and "nested deeper than" in body["error"]
    big = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string", "description": "x" * 100} for i in range(1000)},
    }
    status, body, _ = api("PUT", "/api/v1/admin/event-types/big.one", {"schema": big})
    assert status == 400 and "larger than" in body["error"]
    status, body, _ = api(
        "PUT", "/api/v1/admin/event-types/pp.one", {"schema": {"patternProperties": {"^a": {}}}}
    )
    assert status == 400 and "patternProperties" in body["error"]


def test_a_backtracking_pattern_fails_one_event_instead_of_stalling_the_process(
    stack: Stack, api: Any
) -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a|a)*$"}}}
    # refused at registration now; one stored before that check still only fails its event
    assert api("PUT", "/api/v1/admin/event-types/code.sent", {"schema": schema})[0] == 400
    stack.db["eventTypes"].insert_one({"_id": "code.sent", "schemaJson": json.dumps(schema)})
    key = stack.store().create("p", "https://p.example/h", []).api_key
    status, body = produce(api, key, [{"eventType": "code.sent", "data": {"code": "a" * 40 + "!"}}])
    assert status == 400 and "took too long" in body["error"], body
    assert produce(api, key, [{"eventType": "code.sent", "data": {"code": "aaaa"}}])[0] == 202


# --- medium: header values, revocation, non-finite numbers, UTF-8 --------------------------


def test_header_values_and_names_are_validated_when_set(stack: Stack, api: Any) -> None:
    pid = stack.store().create("h", "https://p.example/h", []).partner.id
    path = f"/api/v1/admin/partners/{pid}"
    refused = [
        {"Authorization": " Bearer s3cret-value"},  # leading whitespace
        {"Authorization": "Bearer s3cret-value "},  # trailing whitespace
        {"X-Token": "秘密"},  # not visible ASCII
        {"X-Token": "a\u2028b"},
        {"X_Recart_Signature_256": "forged"},  # "_" read as "-" by WSGI servers
        {"webhook_signature": "forged"},
        {"Content-Encoding": "gzip"},
        {"Expect": "100-continue"},
        {"Upgrade": "h2c"},
        {"X-Dup": "1", "x-dup": "2"},
        {"X-Dup": "1", "X_Dup": "2"},
    ]
    for headers in refused:
        status, body, _ = api("PATCH", path, {"headers": headers})
        assert status == 400, (headers, body)
        assert "s3cret-value" not in json.dumps(body) and "秘密" not in json.dumps(body)
    status, view, _ = api(
        "PATCH", path, {"headers": {"Hostname": "a.example", "Authorization": "Bearer a b"}}
    )
    assert status == 200 and set(view["headers"]) == {"Hostname", "Authorization"}


def store_headers_unchecked(stack: Stack, partner_id: str, headers: dict[str, str]) -> None:
    """A partner written before the checks existed (or by hand): the deliverer must cope."""
    stack.db["partners"].update_one({"_id": ObjectId(partner_id)}, {"$set": {"headers": headers}})


# CR/LF would inject a header; http.client refuses both and cannot encode the second
@pytest.mark.parametrize("value", ["Bearer s3cret-value\r\nX-Injected: 1", "Bearer 秘密-s3cret-value"])
def test_a_header_value_the_client_cannot_send_is_recorded_and_never_leaked(
    stack: Stack,
    function: Any,
    receiver_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    caplog: Any,
) -> None:
    monkeypatch.setenv("WEBHOOK_MAX_ATTEMPTS", "1")
    receiver = receiver_factory()
    created = stack.store().create("leaky", receiver.url, ["order.created"])
    store_headers_unchecked(stack, created.partner.id, {"Authorization": value})
    delivery = Delivery(stack, function("deliver"))
    delivery.enqueue(created.partner.id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}  # dead-lettered (max attempts 1), not lost
    assert receiver.requests == []
    [logged] = list(stack.db["deliveryAttempts"].find({"partnerId": created.partner.id}))
    assert logged["outcome"] == "dead_lettered" and logged["errorMessage"].startswith("request not sent")
    [dead] = drain(stack.sqs, stack.url("DELIVERY_DLQ_URL"))
    attributes = {k: v["StringValue"] for k, v in dead["MessageAttributes"].items()}
    assert attributes["attempts"] == "1" and attributes["lastError"].startswith("request not sent")
    logs = [{**r.__dict__, "msg": r.getMessage()} for r in caplog.records]
    everything = json.dumps([logged, attributes, logs], default=str)
    assert "s3cret-value" not in everything


def test_deactivation_stops_a_key_within_the_revision_bound_not_the_cache_ttl(
    stack: Stack, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_TTL_SECONDS", "30")
    created = stack.store().create("revoked", "https://p.example/h", [])
    event = [{"eventType": "order.created", "data": {}}]
    assert produce(api, created.api_key, event)[0] == 202  # the key is now cached for 30 s
    other_process = PartnerStore(stack.db, cache_ttl=30)
    other_process.set_active(created.partner.id, False)
    time.sleep(REVISION_CHECK_SECONDS + 0.1)
    assert produce(api, created.api_key, event)[0] == 401


def test_a_deleted_partner_receives_nothing_accepted_after_its_deletion(
    stack: Stack, function: Any, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_TTL_SECONDS", "30")
    receiver = receiver_factory()
    created = stack.store().create("gone", receiver.url, ["order.created"])
    delivery = Delivery(stack, function("deliver"))
    delivery.enqueue(created.partner.id)
    result, messages = delivery.run()
    delivery.delete(result, messages)
    assert len(receiver.requests) == 1  # the partner is cached in the deliverer now
    PartnerStore(stack.db, cache_ttl=30).delete(created.partner.id)
    time.sleep(REVISION_CHECK_SECONDS + 0.1)
    delivery.enqueue(created.partner.id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}
    assert len(receiver.requests) == 1  # dropped, not delivered


def test_after_rotation_without_overlap_only_the_new_secret_signs(
    stack: Stack, function: Any, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    monkeypatch.setenv("CACHE_TTL_SECONDS", "30")
    receiver = receiver_factory()
    created = stack.store().create("rotated", receiver.url, ["order.created"])
    delivery = Delivery(stack, function("deliver"))
    delivery.enqueue(created.partner.id)
    delivery.delete(*delivery.run())
    from datetime import timedelta

    new = PartnerStore(stack.db, cache_ttl=30).rotate_secret(created.partner.id, timedelta(0))
    time.sleep(REVISION_CHECK_SECONDS + 0.1)
    delivery.enqueue(created.partner.id)
    delivery.delete(*delivery.run())
    latest = receiver.wait_for(2)[-1]
    assert Webhook(new).verify(latest.body, latest.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(created.secret_key).verify(latest.body, latest.headers)
    assert " " not in latest.headers["webhook-signature"]  # one signature: the revoked one is gone


def test_non_ascii_event_data_stays_utf8_on_the_queue(stack: Stack, api: Any) -> None:
    key = stack.store().create("p", "https://p.example/h", []).api_key
    text = "é" * 100_000  # 200 KB as UTF-8; 600 KB as \\u escapes, over the 256 KiB message limit
    status, body = produce(api, key, [{"eventType": "order.created", "data": {"note": text, "zh": "秘密"}}])
    assert status == 202, body
    [message] = queued(stack)
    assert "é" in message["Body"] and "秘密" in message["Body"] and "\\u00e9" not in message["Body"]
    assert len(message["Body"].encode()) < 262_144


# --- low: 500s, URLs, header names, IPv6, admin throttling, strict booleans -----------------


@pytest.mark.parametrize(
    "query",
    [{"since": "0001-01-01T00:00:00+01:00"}, {"until": "9999-12-31T23:59:59-01:00"}],
)
def test_dates_outside_what_utc_can_hold_are_a_400_not_a_500(
    stack: Stack, api: Any, query: dict[str, str]
) -> None:
    created = stack.store().create("p", "https://p.example/h", [])
    pid = created.partner.id
    status, body, _ = api("GET", f"/api/v1/admin/partners/{pid}/deliveries", query=query)
    assert status == 400 and "out of range" in body["error"], body
    status, body, _ = api("GET", "/api/v1/deliveries", query=query, headers={"X-API-Key": created.api_key})
    assert status == 400 and "out of range" in body["error"], body
    status, body, _ = api(
        "POST", f"/api/v1/admin/partners/{pid}/recover", {"since": "0001-01-01T00:00:00+01:00"}
    )
    assert status == 400 and "out of range" in body["error"], body


def test_webhook_urls_with_credentials_are_refused_and_query_strings_masked(stack: Stack, api: Any) -> None:
    status, body, _ = api(
        "POST", "/api/v1/admin/partners", {"name": "u", "webhookUrl": "https://user:pw@p.example/h"}
    )
    assert status == 400 and "credentials" in body["error"] and "pw" not in body["error"]
    status, created, _ = api(
        "POST", "/api/v1/admin/partners", {"name": "q", "webhookUrl": "https://p.example/h?token=t0ps3cret"}
    )
    assert status == 201 and created["webhookUrl"] == "https://p.example/h?***"
    status, listing, _ = api("GET", "/api/v1/admin/partners")
    assert "t0ps3cret" not in json.dumps(listing)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/h",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/h",
        "http://[::127.0.0.1]/h",
        "http://[64:ff9b:1::7f00:1]/h",
        "http://localhost/h",
        "http://10.1.2.3/h",
    ],
)
def test_private_destinations_are_refused_when_set_not_only_at_delivery(
    stack: Stack, api: Any, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_DESTINATIONS", "false")
    status, body, _ = api("POST", "/api/v1/admin/partners", {"name": "private", "webhookUrl": url})
    assert status == 400 and "loopback, private" in body["error"], body


@pytest.mark.parametrize(
    "address",
    ["::127.0.0.1", "::ffff:0:7f00:1", "64:ff9b:1::7f00:1", "64:ff9b::a9fe:a9fe", "::ffff:10.0.0.1"],
)
def test_ipv6_forms_that_embed_a_private_ipv4_are_not_public(address: str) -> None:
    assert not is_public_address(address)


def test_a_public_ipv4_embedded_in_nat64_stays_public() -> None:
    assert is_public_address("64:ff9b::808:808")  # 8.8.8.8


def test_failed_admin_keys_are_throttled_per_source_and_logged_with_it(api: Any, caplog: Any) -> None:
    for _ in range(10):
        assert (
            api("GET", "/api/v1/admin/partners", headers={"X-Admin-Key": "wrong"}, source_ip="198.51.100.7")[
                0
            ]
            == 401
        )
    wrong = {"X-Admin-Key": "wrong"}
    status, body, headers = api("GET", "/api/v1/admin/partners", headers=wrong, source_ip="198.51.100.7")
    assert status == 429 and int(headers["Retry-After"]) > 0
    # the right key is still accepted from there: a throttle nobody can turn against the operator
    assert api("GET", "/api/v1/admin/partners", source_ip="198.51.100.7")[0] == 200
    assert api("GET", "/api/v1/admin/partners", headers=wrong, source_ip="198.51.100.8")[0] == 401
    refusals = [r for r in caplog.records if r.getMessage() == "admin key refused"]
    assert len(refusals) == 12 and {r.source_ip for r in refusals} == {"198.51.100.7", "198.51.100.8"}


def test_is_active_must_be_a_boolean_not_a_string(stack: Stack, api: Any) -> None:
    pid = stack.store().create("p", "https://p.example/h", []).partner.id
    status, _, _ = api("PATCH", f"/api/v1/admin/partners/{pid}", {"isActive": "false"})
    assert status == 400
    assert stack.store().get(pid).is_active


def test_a_header_value_that_breaks_delivery_unexpectedly_is_still_recorded(
    stack: Stack, function: Any, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever goes wrong inside the POST, the attempt is logged and retried, never silent."""
    # a backoff (4-5 s) well past the check below, however slow the SQS endpoint (LocalStack)
    monkeypatch.setenv("WEBHOOK_RETRY_DELAY", "5000")
    receiver = receiver_factory()
    created = stack.store().create("odd", receiver.url, ["order.created"])
    delivery = Delivery(stack, function("deliver"))
    import webhooks.delivery.deliverer as deliver_module

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom with Bearer s3cret-value inside")

    monkeypatch.setattr(deliver_module, "post", broken)
    delivery.enqueue(created.partner.id)
    result, messages = delivery.run()
    assert result == {"batchItemFailures": []}  # decided: its retry re-sent, due after the backoff
    delivery.delete(result, messages)
    [logged] = list(stack.db["deliveryAttempts"].find({"partnerId": created.partner.id}))
    assert logged["errorMessage"] == "internal error: RuntimeError" and logged["outcome"] == "retry"
    assert DeliveryMessage.model_validate_json(messages[0]["Body"]).partnerId == created.partner.id
    assert receive(stack.sqs, delivery.queue, 1, timeout=0.5) == []  # hidden for its backoff


def test_the_local_api_server_drops_a_client_that_stops_sending() -> None:
    """A client that sends half a request must not hold a server thread forever."""
    import socket

    from webhooks_cli.apigw import ApiServer

    calls: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event)
        return {"statusCode": 200}

    server = ApiServer(handler, 0, read_timeout=0.5)
    server.start()
    try:
        for partial in (
            b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\n",
            b"POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n{",
        ):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(partial)
                assert sock.recv(4096) == b""  # closed by the server, no answer, handler not called
        assert calls == []
    finally:
        server.stop()


def test_a_stopping_local_api_answers_the_request_it_is_handling_and_refuses_new_ones() -> None:
    """`webhooks local` stops its API worker processes as soon as a stop begins: a request
    being handled then is still answered in full, and a later one on an open keep-alive
    connection is told 503 rather than cut off."""
    import http.client

    from webhooks_cli.apigw import ApiServer

    entered, release = threading.Event(), threading.Event()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["httpMethod"] == "POST":  # held until the test lets it go
            entered.set()
            assert release.wait(10)
        return {"statusCode": 202, "body": '{"ok": true}'}

    server = ApiServer(handler, 0)
    server.start()
    first = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    second = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    second.request("GET", "/health")  # an open keep-alive connection, answered before the stop
    assert second.getresponse().read() == b'{"ok": true}'
    replies: list[tuple[int, bytes]] = []

    def call() -> None:
        first.request("POST", "/api/v1/events", body=b"[]", headers={"Content-Type": "application/json"})
        reply = first.getresponse()
        replies.append((reply.status, reply.read()))

    caller = threading.Thread(target=call)
    caller.start()
    assert entered.wait(10)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive()  # waiting for the request in hand
    second.request("GET", "/health")
    late = second.getresponse()
    assert late.status == 503 and b"stopping" in late.read()
    release.set()
    caller.join(10)
    stopper.join(10)
    assert not stopper.is_alive()
    assert replies == [(202, b'{"ok": true}')]
