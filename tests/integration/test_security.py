"""Hostile input at the API, and the constant-time checks."""

from __future__ import annotations

import hmac
import json
from typing import Any

import pytest

from webhooks.delivery import signing
from webhooks.delivery.signing import hash_api_key
from webhooks.ingest.json_input import MAX_DATA_DEPTH
from webhooks.models import EventEnvelope

from conftest import Stack
from support import api_event, drain

SAMPLE = json.dumps([{"eventType": "order.created", "data": {"orderId": "1"}}])


@pytest.fixture
def ingest(stack: Stack, function: Any) -> Any:
    handler = function("ingest")

    def call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        result = handler(event)
        return result["statusCode"], json.loads(result["body"])

    return call


def key_variants(real_key: str) -> list[str]:
    return [
        hash_api_key(real_key),  # what the database holds, tried as a key
        real_key + " ",
        " " + real_key,
        real_key.upper(),
        real_key[:-1],
        "x" * 10_000,  # very long
        "ключ-🔑-" + real_key,  # unicode
        real_key + "\x00",
        "' OR '1'='1",
        '{"$ne": null}',  # NoSQL injection attempt (the key is hashed, never a query operator)
    ]


def test_auth_bypass_attempts_are_401(stack: Stack, ingest: Any) -> None:
    real = stack.store().create("victim", "https://v.example/h", [], api_key="real-key-123").api_key
    for attempt in key_variants(real):
        status, body = ingest(api_event(SAMPLE, attempt))
        assert (status, body) == (401, {"error": "Invalid API key or inactive partner"}), attempt
    for missing in (None, ""):
        assert ingest(api_event(SAMPLE, missing)) == (401, {"error": "API key is required"})
    assert ingest(api_event(SAMPLE, real))[0] == 202
    assert len(drain(stack.sqs, stack.url("EVENTS_QUEUE_URL"))) == 1  # only the real key got through


def nested_body(depth: int) -> str:
    """One event whose data nests ``depth`` objects (data itself is the first)."""
    return '[{"eventType": "a.b", "data": ' + '{"a":' * depth + "1" + "}" * depth + "}]"


def test_deeply_nested_json_is_a_400_not_a_crash(stack: Stack, ingest: Any) -> None:
    key = stack.store().create("p", "https://p.example/h", []).api_key
    for depth in (MAX_DATA_DEPTH + 1, 300, 1_000, 100_000):
        nested = nested_body(depth)
        status, body = ingest(api_event(nested, key))
        assert status in (400, 413), body
        assert "error" in body
        if depth == MAX_DATA_DEPTH + 1:
            assert "[0].data: nested deeper than 64 levels" in body["error"]


def test_data_nested_to_the_limit_is_enqueued_in_an_envelope_dispatch_can_read(
    stack: Stack, ingest: Any
) -> None:
    """Data at 300 levels used to be accepted, then refused by dispatch's JSON parser (200
    levels), failing the whole envelope; at the limit it reads back."""
    key = stack.store().create("p", "https://p.example/h", []).api_key
    depth = MAX_DATA_DEPTH
    nested = nested_body(depth)
    assert ingest(api_event(nested, key))[0] == 202
    (message,) = drain(stack.sqs, stack.url("EVENTS_QUEUE_URL"))
    envelope = EventEnvelope.model_validate_json(message["Body"])
    assert json.dumps(envelope.events[0].data) == json.dumps(json.loads(nested)[0]["data"])


def test_wide_and_odd_json_is_handled(stack: Stack, ingest: Any) -> None:
    key = stack.store().create("p", "https://p.example/h", []).api_key
    odd = [
        {
            "eventType": "a.b",
            "data": {"s": "\ud800", "nul": "\u0000", "k" * 1000: [None] * 1000},
        }
    ]
    status, _ = ingest(api_event(json.dumps(odd), key))
    assert status == 202


def test_numbers_json_parsers_disagree_on_are_refused_with_their_path(stack: Stack, ingest: Any) -> None:
    """1e999 would reach partners as Infinity (invalid JSON); 10**400 and 2**53 lose precision
    in JavaScript; a 5,000-digit integer used to be a 500."""
    key = stack.store().create("p", "https://p.example/h", []).api_key
    cases = {
        '[{"eventType":"a.b","data":{"x":1e999}}]': "[0].data.x: number 1e999 is out of range",
        '[{"eventType":"a.b","data":{"n":[1,9007199254740992]}}]': "[0].data.n[1]: number 9007199254740992",
        '[{"eventType":"a.b","data":{"n":-1e400}}]': "[0].data.n: number -1e400",
        '[{"eventType":"a.b","data":{"big":' + "9" * 5000 + "}}]": "[0].data.big: number 99999",
    }
    for body, expected in cases.items():
        status, reply = ingest(api_event(body, key))
        assert status == 400 and expected in reply["error"], (body[:60], reply)
    limits = '[{"eventType":"a.b","data":{"max":9007199254740991,"min":-9007199254740991,"f":1.7e308}}]'
    assert ingest(api_event(limits, key))[0] == 202


def test_signature_checks_use_constant_time_comparison(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module signing compares with
    secret = signing.generate_secret()
    body = b'{"eventId":"e"}'
    headers = signing.signature_headers("e", "t", body, [secret])
    assert signing.verify_recart_signature(body, secret, headers["X-Recart-Signature-256"])
    assert signing.verify_standard_signature(body, headers, secret)
    assert not signing.verify_standard_signature(
        body, {**headers, "webhook-signature": "v1,AAAA v1,BBBB"}, secret
    )
    assert len(calls) == 4  # one per comparison, every candidate compared (no early exit)


def test_api_keys_are_compared_by_hash_lookup_not_by_string_equality(stack: Stack) -> None:
    store = stack.store()
    created = store.create("p", "https://p.example/h", [])
    doc = stack.db.partners.find_one({"_id": __import__("bson").ObjectId(created.partner.id)})
    assert doc["apiKeyHash"] == hash_api_key(created.api_key) and "apiKey" not in doc
    # the only key-dependent query is an exact match on the SHA-256 of what was sent
    assert store.find_by_api_key(doc["apiKeyHash"]) is None


def test_a_body_that_is_not_utf8_is_a_400(stack: Stack, ingest: Any) -> None:
    import base64

    key = stack.store().create("p", "https://p.example/h", []).api_key
    event = api_event(base64.b64encode(b'[{"eventType": "a.b", "data": {"x": "\xff\xfe"}}]').decode(), key)
    event["isBase64Encoded"] = True
    status, body = ingest(event)
    assert (status, body) == (400, {"error": "Invalid request body. Errors: body: not valid UTF-8"})
