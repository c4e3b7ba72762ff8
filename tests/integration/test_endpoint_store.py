"""The endpoint store against the MongoDB wire server: a partner's document is its first
endpoint, other endpoints have their own documents, secrets, subscriptions and health."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest

from webhooks.delivery.parked import ParkedDeliveries
from webhooks.endpoints.model import EndpointNotFound, first_endpoint_id
from webhooks.endpoints.store import EndpointStore
from webhooks.errors import Conflict
from webhooks.models import DeliveryMessage, Event, new_event_id, utc_timestamp

from conftest import Stack


def _stores(stack: Stack) -> tuple[EndpointStore, str]:
    partners = stack.store()
    endpoints = EndpointStore(stack.db, partners)
    endpoints.ensure_indexes()
    partner = partners.create("acme", "https://acme.example/hook", ["order.created"]).partner
    return endpoints, partner.id


def test_partner_document_is_listed_as_its_first_endpoint(stack: Stack) -> None:
    endpoints, partner_id = _stores(stack)
    (first,) = endpoints.of_partner(partner_id)
    assert first.id == first_endpoint_id(partner_id)
    assert first.first and first.webhook_url == "https://acme.example/hook"
    assert first.events == ("order.created",)
    assert first.secret_key == endpoints.partner_store.get(partner_id).secret_key


def test_new_endpoint_has_its_own_secret_events_and_settings(stack: Stack) -> None:
    endpoints, partner_id = _stores(stack)
    created, secret = endpoints.create(
        partner_id,
        {
            "url": "https://staging.acme.example/hook",
            "filter": {"data": {"total": {"$gte": 100}}},
            "retrySchedule": [5, 60],
            "description": "staging",
            "rateLimitPerSecond": None,
        },
        ["order.*"],
    )
    assert secret == created.secret_key != endpoints.partner_store.get(partner_id).secret_key
    assert created.events == ("order.*",) and created.retry_schedule == (5, 60)
    assert [e.id for e in endpoints.of_partner(partner_id)] == [first_endpoint_id(partner_id), created.id]
    # the first endpoint's subscriptions are not the new endpoint's
    assert endpoints.partner_store.subscriptions_of(partner_id) == ["order.created"]
    assert endpoints.get(partner_id, first_endpoint_id(partner_id)).events == ("order.created",)


def test_another_partners_endpoint_is_not_found(stack: Stack) -> None:
    endpoints, partner_id = _stores(stack)
    other = endpoints.partner_store.create("other", "https://other.example/hook", []).partner
    created, _ = endpoints.create(partner_id, {"url": "https://a.example/h"}, [])
    with pytest.raises(EndpointNotFound):
        endpoints.get(other.id, created.id)
    with pytest.raises(EndpointNotFound):
        endpoints.get(other.id, first_endpoint_id(partner_id))


def test_first_endpoint_update_writes_the_partner_document(stack: Stack) -> None:
    endpoints, partner_id = _stores(stack)
    first_id = first_endpoint_id(partner_id)
    updated = endpoints.update(
        partner_id,
        first_id,
        {"url": "https://new.acme.example/hook", "filter": {"eventType": "order.created"}},
        events=["order.created", "order.paid"],
    )
    assert updated.webhook_url == "https://new.acme.example/hook"
    assert endpoints.partner_store.get(partner_id).webhook_url == "https://new.acme.example/hook"
    assert endpoints.partner_store.subscriptions_of(partner_id) == ["order.created", "order.paid"]
    cleared = endpoints.update(partner_id, first_id, {"filter": None})
    assert cleared.filter is None


def test_first_endpoint_cannot_be_deleted_but_others_can(stack: Stack) -> None:
    endpoints, partner_id = _stores(stack)
    with pytest.raises(Conflict):
        endpoints.delete(partner_id, first_endpoint_id(partner_id))
    created, _ = endpoints.create(partner_id, {"url": "https://a.example/h"}, ["x.y"])
    endpoints.delete(partner_id, created.id)
    with pytest.raises(EndpointNotFound):
        endpoints.get(partner_id, created.id)
    assert stack.db["subscriptions"].count_documents({"endpointId": created.id}) == 0


def test_rotation_keeps_the_old_secret_signing_for_the_overlap(stack: Stack) -> None:
    endpoints, partner_id = _stores(stack)
    created, old = endpoints.create(partner_id, {"url": "https://a.example/h"}, [])
    new = endpoints.rotate_secret(partner_id, created.id, timedelta(hours=1))
    assert endpoints.get(partner_id, created.id).signing_secrets() == [new, old]
    newest = endpoints.rotate_secret(partner_id, created.id, timedelta(0))
    assert endpoints.get(partner_id, created.id).signing_secrets() == [newest]


def test_health_writes_land_on_the_endpoints_own_document(stack: Stack) -> None:
    endpoints, partner_id = _stores(stack)
    created, _ = endpoints.create(partner_id, {"url": "https://a.example/h"}, [])
    now = datetime.now(UTC)
    after = endpoints.add_failures(created, 3, now)
    assert after is not None and after.consecutive_failures == 3
    assert endpoints.disable(created, "failing") and not endpoints.disable(created, "again")
    assert endpoints.get(partner_id, created.id).endpoint_disabled
    assert not endpoints.get(partner_id, first_endpoint_id(partner_id)).endpoint_disabled
    enabled = endpoints.enable(partner_id, created.id)
    assert not enabled.endpoint_disabled and enabled.consecutive_failures == 0
    endpoints.pause(created, now + timedelta(minutes=5))
    assert endpoints.get(partner_id, created.id).paused_for(now) > 0
    assert endpoints.get_cached(partner_id, None) is not None
    assert endpoints.get_cached(partner_id, "ep_missing") is None


def test_deleting_the_partner_deletes_its_endpoints(stack: Stack) -> None:
    endpoints, partner_id = _stores(stack)
    endpoints.create(partner_id, {"url": "https://a.example/h"}, ["x.y"])
    endpoints.partner_store.delete(partner_id)
    assert stack.db["endpoints"].count_documents({}) == 0
    assert stack.db["subscriptions"].count_documents({}) == 0


def test_deleting_an_endpoint_removes_its_parked_deliveries_and_no_others(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webhooks.observability import logger

    written = io.StringIO()
    monkeypatch.setattr(logger.registered_handler, "stream", written)
    endpoints, partner_id = _stores(stack)
    doomed, _ = endpoints.create(partner_id, {"url": "https://a.example/h"}, ["order.created"])
    kept, _ = endpoints.create(partner_id, {"url": "https://b.example/h"}, ["order.created"])
    parked = ParkedDeliveries(stack.db)
    for endpoint_id in (doomed.id, doomed.id, kept.id, None):
        event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
        parked.park(DeliveryMessage(partnerId=partner_id, endpointId=endpoint_id, event=event))
    assert parked.count(partner_id, doomed.id) == 2

    endpoints.delete(partner_id, doomed.id)

    assert parked.count(partner_id, doomed.id) == 0
    assert (parked.count(partner_id, kept.id), parked.count(partner_id)) == (1, 1)
    [line] = [json.loads(x) for x in written.getvalue().splitlines() if "parked deliveries removed" in x]
    assert (line["endpoint_id"], line["parked_deliveries_removed"]) == (doomed.id, 2)


def test_the_first_endpoints_new_subscription_rows_carry_no_endpoint_id(stack: Stack) -> None:
    endpoints, partner_id = _stores(stack)
    endpoints.set_events(partner_id, None, ["order.created", "cart.updated"])
    [row] = list(stack.db["subscriptions"].find({"eventType": "cart.updated"}))  # inserted now
    assert "endpointId" not in row, row  # the shape the Node service and PartnerStore write
    assert endpoints.get(partner_id, first_endpoint_id(partner_id)).events == (
        "cart.updated",
        "order.created",
    )
