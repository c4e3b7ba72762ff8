import base64
import hashlib
import hmac
import json
import time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks.delivery.signing import (
    generate_secret,
    recart_signature,
    signature_headers,
    verify_recart_signature,
    verify_standard_signature,
)

BODY = b'{"eventId":"event_0123456789abcdef01234567","eventType":"order.created","timestamp":"2026-11-28T20:51:58.123Z","data":{"total":9.5}}'


def test_new_secrets_are_whsec_and_32_random_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert generate_secret() != secret


def test_recart_signature_is_plain_hex_hmac_of_the_body_keyed_with_the_secret_string() -> None:
    secret = "legacy-secret-from-the-node-service"
    expected = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    assert recart_signature(BODY, secret) == expected
    headers = signature_headers("event_0123456789abcdef01234567", "order.created", BODY, [secret])
    # what a partner of the original service checks, by hand
    assert hmac.compare_digest(headers["X-Recart-Signature-256"], expected)
    assert verify_recart_signature(BODY, secret, headers["X-Recart-Signature-256"])
    assert not verify_recart_signature(BODY + b" ", secret, headers["X-Recart-Signature-256"])
    assert not verify_recart_signature(BODY, secret + "x", headers["X-Recart-Signature-256"])


def test_standard_webhooks_library_accepts_our_signature() -> None:
    secret = generate_secret()
    headers = signature_headers("event_0123456789abcdef01234567", "order.created", BODY, [secret])
    payload = Webhook(secret).verify(BODY, headers)
    assert payload["eventType"] == "order.created"
    assert headers["webhook-id"] == headers["X-Recart-Event-Id"] == "event_0123456789abcdef01234567"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5


def test_during_a_rotation_either_secret_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    headers = signature_headers("event_x", "order.created", BODY, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)
    assert verify_standard_signature(BODY, headers, old) and verify_standard_signature(BODY, headers, new)
    assert verify_recart_signature(BODY, new, headers["X-Recart-Signature-256"])  # the current one
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)


def test_tampered_body_wrong_secret_and_stale_timestamp_are_rejected() -> None:
    secret = generate_secret()
    headers = signature_headers("event_x", "order.created", BODY, [secret])
    tampered = BODY.replace(b"9.5", b"0.5")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    assert not verify_standard_signature(tampered, headers, secret)
    assert not verify_standard_signature(BODY, headers, generate_secret())

    stale = signature_headers("event_x", "order.created", BODY, [secret], now=time.time() - 600)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, stale)
    assert not verify_standard_signature(BODY, stale, secret)


@pytest.mark.parametrize("bad", ["", "v1", "v1,", "v2,abc", "v1,!!!notbase64", "garbage value"])
def test_malformed_signature_headers_are_a_plain_no(bad: str) -> None:
    secret = generate_secret()
    headers = signature_headers("event_x", "order.created", BODY, [secret])
    headers["webhook-signature"] = bad
    assert verify_standard_signature(BODY, headers, secret) is False


def test_headers_are_case_insensitive_for_the_verifier() -> None:
    secret = generate_secret()
    headers = {k.upper(): v for k, v in signature_headers("e", "t", BODY, [secret]).items()}
    assert verify_standard_signature(BODY, headers, secret)


def test_a_legacy_non_base64_secret_still_signs_both_schemes() -> None:
    secret = "not base64 at all!"
    headers = signature_headers("event_x", "order.created", BODY, [secret])
    assert verify_standard_signature(BODY, headers, secret)
    signed = f"event_x.{headers['webhook-timestamp']}.".encode() + BODY
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    json.loads(BODY)
