"""Deactivation, deletion and secret rotation reach every process within the revision bound, not the cache TTL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from webhooks.partners.cache import REVISION_CHECK_SECONDS
from webhooks.partners.store import PartnerStore
from webhooks_cli.main import main

from conftest import Delivery, Stack


def test_deactivation_stops_a_key_within_the_revision_bound_not_the_cache_ttl(
    stack: Stack, api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_TTL_SECONDS", "30")
    created = stack.store().create("revoked", "https://p.example/h", [])
    event = [{"eventType": "order.created", "data": {}}]
    assert api.publish(created.api_key, event)[0] == 202  # the key is now cached for 30 s
    other_process = PartnerStore(stack.db, cache_ttl=30)
    other_process.set_active(created.partner.id, False)
    time.sleep(REVISION_CHECK_SECONDS + 0.1)
    assert api.publish(created.api_key, event)[0] == 401


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


def test_rotating_with_no_overlap_retires_every_earlier_secret_at_once(
    stack: Stack, delivery: Delivery, receiver_factory: Any
) -> None:
    receiver = receiver_factory()
    created = stack.store().create("rotated", receiver.url, ["order.created"])
    partner_id, original = created.partner.id, created.secret_key
    second = stack.store().rotate_secret(partner_id, timedelta(hours=24))
    newest = stack.store().rotate_secret(partner_id, timedelta(0))
    delivery.enqueue(partner_id)
    delivery.run()
    [got] = receiver.wait_for(1)
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    Webhook(newest).verify(got.body, got.headers)
    for retired in (original, second):
        with pytest.raises(Exception, match="No matching signature"):
            Webhook(retired).verify(got.body, got.headers)


def test_rotation_overlap_defaults_to_secret_overlap_hours_in_the_api_and_the_cli(
    stack: Stack, api: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SECRET_OVERLAP_HOURS", "2")
    pid = stack.store().create("rot", "https://r.example/h", []).partner.id
    status, body, _ = api("POST", f"/api/v1/admin/partners/{pid}/rotate-secret")
    assert status == 200 and body["previousSecretValidHours"] == 2
    [(_, expires)] = stack.store().get(pid).previous_secrets
    assert timedelta(hours=1.9) < expires - datetime.now(UTC) <= timedelta(hours=2)
    assert main(["partners", "rotate-secret", pid]) == 0  # the CLI, through the same layer
    assert json.loads(capsys.readouterr().out)["previousSecretValidHours"] == 2
