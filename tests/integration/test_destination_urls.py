"""Webhook URLs: credentials refused, query strings masked, private destinations refused when set."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhooks.delivery.ssrf import is_public_address

from conftest import Stack


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


def test_a_url_sent_back_masked_as_the_api_shows_it_is_refused_and_nothing_changes(
    stack: Stack, api: Any
) -> None:
    real = "https://p.example/h?token=t0ps3cret"
    status, created, _ = api("POST", "/api/v1/admin/partners", {"name": "m", "webhookUrl": real})
    assert status == 201 and created["webhookUrl"] == "https://p.example/h?***"
    partner = f"/api/v1/admin/partners/{created['partnerId']}"
    # the partner's webhookUrl, PATCHed back as read
    status, body, _ = api("PATCH", partner, {"webhookUrl": created["webhookUrl"]})
    assert status == 400 and "webhookUrl: looks masked" in body["error"], body
    # a second endpoint's url, query and credentials masked alike
    status, added, _ = api(
        "POST", f"{partner}/endpoints", {"url": "https://q.example/h?sig=abc", "events": ["order.created"]}
    )
    assert status == 201 and added["url"] == "https://q.example/h?***"
    endpoint = f"{partner}/endpoints/{added['endpointId']}"
    for masked in (added["url"], "https://***@q.example/h", "https://q.example/h?a=1&b=***"):
        status, body, _ = api("PATCH", endpoint, {"url": masked})
        assert status == 400 and "url: looks masked" in body["error"], (masked, body)
    stored = stack.db["partners"].find_one({})
    assert stored is not None and stored["webhookUrl"] == real
    urls = json.dumps(list(stack.db["endpoints"].find({}, {"_id": 0})), default=str) + json.dumps(
        stored, default=str
    )
    assert "sig=abc" in urls and "***" not in urls
