"""`webhooks endpoints` against the test's MongoDB and queues (in-process): the same service
layer as the HTTP routes, the secret printed once, bad options refused in the API's words."""

from __future__ import annotations

import json
from typing import Any

import pytest

from webhooks.endpoints.model import first_endpoint_id
from webhooks.endpoints.store import EndpointStore

from conftest import Stack
from support import drain
from support import run_cli as run


@pytest.fixture
def partner(stack: Stack) -> str:
    return stack.store().create("shop", "https://shop.example/h", ["order.*"]).partner.id


def test_add_list_show_update_rotate_and_delete_an_endpoint(
    stack: Stack, partner: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, created, err = run(
        capsys,
        "endpoints",
        "add",
        "--partner",
        partner,
        "--url",
        "https://big.example/h",
        "--events",
        "order.created,order.paid",
        "--filter",
        '{"data": {"value": {"$gte": 100}}}',
        "--schedule",
        "5,300,1800",
        "--rate-limit",
        "10",
        "--header",
        "X-Tenant=t-1",
        "--description",
        "big orders",
    )
    assert code == 0, err
    assert "shown once" in err
    eid, secret = created["endpointId"], created["secretKey"]
    assert created["retrySchedule"] == [5, 300, 1800] and created["rateLimitPerSecond"] == 10
    assert created["filter"] == {"data": {"value": {"$gte": 100}}} and created["headers"] == {
        "X-Tenant": "***"
    }

    code, listed, _ = run(capsys, "endpoints", "list", "--partner", partner, "--json")
    assert [e["endpointId"] for e in listed] == [first_endpoint_id(partner), eid]
    code, table, _ = run(capsys, "endpoints", "list", "--partner", partner)
    assert eid in table and "(first)" in table and secret not in table

    code, shown, _ = run(capsys, "endpoints", "show", eid, "--partner", partner)
    assert shown["events"] == ["order.created", "order.paid"] and "secretKey" not in shown

    code, changed, _ = run(
        capsys, "endpoints", "update", eid, "--partner", partner, "--events", "cart.*", "--clear", "filter"
    )
    assert code == 0 and (changed["events"], changed["filter"]) == (["cart.*"], None)
    assert changed["retrySchedule"] == [5, 300, 1800]

    code, rotated, err = run(
        capsys, "endpoints", "rotate-secret", eid, "--partner", partner, "--overlap-hours", "1"
    )
    assert code == 0 and rotated["secretKey"] != secret and "shown once" in err
    stored = EndpointStore(stack.db, stack.store()).get(partner, eid)
    assert stored.signing_secrets() == [rotated["secretKey"], secret]

    code, _, err = run(capsys, "endpoints", "delete", first_endpoint_id(partner), "--partner", partner)
    assert code == 1 and "first endpoint" in err
    code, gone, _ = run(capsys, "endpoints", "delete", eid, "--partner", partner)
    assert (code, gone) == (0, {"deleted": eid})
    code, _, err = run(capsys, "endpoints", "show", eid, "--partner", partner)
    assert code == 1 and "Endpoint not found" in err


def test_a_bad_filter_or_schedule_is_refused_naming_its_path_and_nothing_is_stored(
    stack: Stack, partner: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["endpoints", "add", "--partner", partner, "--url", "https://b.example/h", "--events", "order.*"]
    code, _, err = run(capsys, *base, "--filter", '{"data": {"value": {"$gtx": 1}}}')
    assert code == 2 and "filter: data.value.$gtx" in err, err
    code, _, err = run(capsys, *base, "--filter", "{not json")
    assert code == 2 and "--filter" in err
    code, _, err = run(capsys, *base, "--schedule", "5,999999")
    assert code == 2 and "retrySchedule" in err, err
    code, _, err = run(capsys, *base, "--header", "nope")
    assert code == 2 and "NAME=VALUE" in err
    assert stack.db["endpoints"].count_documents({}) == 0


def test_test_and_enable_put_deliveries_for_that_endpoint_on_the_queue(
    stack: Stack, partner: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, created, _ = run(
        capsys,
        "endpoints",
        "add",
        "--partner",
        partner,
        "--url",
        "https://b.example/h",
        "--events",
        "order.*",
    )
    eid = created["endpointId"]
    code, sent, _ = run(capsys, "endpoints", "test", eid, "--partner", partner)
    assert code == 0 and sent["endpointId"] == eid
    [message] = [json.loads(m["Body"]) for m in drain(stack.sqs, stack.url("DELIVERY_QUEUE_URL"))]
    assert (message["endpointId"], message["event"]["eventType"]) == (eid, "webhook.test")

    store = EndpointStore(stack.db, stack.store())
    assert store.disable(store.get(partner, eid), "test")
    code, enabled, _ = run(capsys, "endpoints", "enable", eid, "--partner", partner)
    assert code == 0 and enabled["health"]["status"] == "enabled" and enabled["replayed"] == 0
    assert not store.get(partner, eid).endpoint_disabled


def test_receive_scopes_are_set_and_removed_from_the_cli(
    stack: Stack, partner: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, shown, err = run(capsys, "partners", "receive-scopes", partner, "--events", "order.*,cart.updated")
    assert code == 0 and shown["receiveScopes"] == ["order.*", "cart.updated"], err
    assert stack.store().get(partner).receive_scopes == ("order.*", "cart.updated")
    code, shown, _ = run(capsys, "partners", "receive-scopes", partner)
    assert code == 0 and shown["receiveScopes"] is None
    assert stack.store().get(partner).receive_scopes is None
    code, _, err = run(capsys, "partners", "receive-scopes", partner, "--events", "bad pattern")
    assert code != 0 and "receive scopes" in err


@pytest.fixture
def no_local_runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> pytest.MonkeyPatch:
    """No running `webhooks local` to take the API's URL from, and no WEBHOOKS_API_URL."""
    monkeypatch.setenv("WEBHOOKS_LOCAL_DIR", str(tmp_path))
    monkeypatch.delenv("WEBHOOKS_API_URL", raising=False)
    return monkeypatch


def test_a_portal_link_takes_the_api_url_from_webhooks_api_url(
    stack: Stack, partner: str, capsys: pytest.CaptureFixture[str], no_local_runtime: pytest.MonkeyPatch
) -> None:
    no_local_runtime.setenv("WEBHOOKS_API_URL", "https://abc.example/v1/")
    code, issued, err = run(capsys, "partners", "portal-link", partner, "--ttl", "1h")
    assert code == 0, err
    assert issued["url"] == f"https://abc.example/v1/console#portal={issued['token']}"


def services_partner(token: str) -> str:
    from webhooks_cli.commands import services

    return services().portal.partner(token).id
