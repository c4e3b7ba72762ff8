"""Webhook signatures: the original service's ``X-Recart-Signature-256`` and Standard Webhooks.

Both schemes sign the exact body bytes. Verification helpers are constant-time and are
what a partner can copy (README, "Verifying signatures").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping

SECRET_PREFIX = "whsec_"
TIMESTAMP_TOLERANCE_SECONDS = 300


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def generate_api_key() -> str:
    return "pk_" + secrets.token_urlsafe(32)


def hash_api_key(api_key: str) -> str:
    """SHA-256 hex of the API key: what the partner store keeps instead of the key."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def recart_signature(body: bytes, secret: str) -> str:
    """``X-Recart-Signature-256``: lowercase hex HMAC-SHA256 of the body, keyed with the secret string."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def _standard_key(secret: str) -> bytes:
    # A whsec_ secret is keyed by its decoded bytes (the spec); a legacy secret from the
    # original service is not base64, so it is keyed by its UTF-8 bytes.
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :])
    return secret.encode("utf-8")


def _standard_digest(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def standard_signature(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: ``v1,<base64>`` for each current secret, space-separated."""
    return " ".join(f"v1,{_standard_digest(s, msg_id, timestamp, body)}" for s in secrets_)


def signature_headers(
    event_id: str, event_type: str, body: bytes, secrets_: list[str], now: float | None = None
) -> dict[str, str]:
    """Every header of a webhook request; ``secrets_[0]`` is the current secret."""
    timestamp = int(now if now is not None else time.time())
    return {
        "Content-Type": "application/json",
        "X-Recart-Event-Id": event_id,
        "X-Recart-Event-Type": event_type,
        "X-Recart-Signature-256": recart_signature(body, secrets_[0]),
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(secrets_, event_id, timestamp, body),
    }


def verify_recart_signature(body: bytes, secret: str, signature: str) -> bool:
    """Constant-time check of ``X-Recart-Signature-256``."""
    return hmac.compare_digest(recart_signature(body, secret), signature.strip().lower())


def verify_standard_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    tolerance: int = TIMESTAMP_TOLERANCE_SECONDS,
    now: float | None = None,
) -> bool:
    """Constant-time check of the Standard Webhooks headers; stale timestamps fail.

    Header names are matched case-insensitively. Any of the space-separated ``v1``
    signatures may match (a rotation sends the old and the new one).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    try:
        timestamp = int(lowered.get("webhook-timestamp", ""))
    except ValueError:
        return False
    current = time.time() if now is None else now
    if not msg_id or abs(current - timestamp) > tolerance:
        return False
    try:
        expected = _standard_digest(secret, msg_id, timestamp, body)
    except (binascii.Error, ValueError):
        return False
    found = False
    for candidate in lowered.get("webhook-signature", "").split():
        version, _, value = candidate.partition(",")
        # No early exit: every candidate is compared, in constant time each.
        found |= version == "v1" and hmac.compare_digest(expected, value)
    return found
