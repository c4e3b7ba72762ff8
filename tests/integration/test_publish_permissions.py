"""What a producer key may publish: never the platform's own event types, only its publish scopes."""

from __future__ import annotations

from typing import Any

from conftest import Stack
from support import drain


def queued(stack: Stack, name: str = "EVENTS_QUEUE_URL") -> list[dict[str, Any]]:
    return drain(stack.sqs, stack.url(name))


def test_no_producer_key_can_publish_the_platforms_own_event_types(stack: Stack, api: Any) -> None:
    key = stack.store().create("producer", "https://p.example/h", []).api_key
    for event_type in ("endpoint.disabled", "webhook.test", "endpoint.anything"):
        status, body = api.publish(
            key, [{"eventType": "order.created", "data": {}}, {"eventType": event_type, "data": {}}]
        )
        assert status == 403, body
        assert body == {"error": f"Forbidden: event type {event_type!r} is reserved for the platform"}
    assert queued(stack) == []  # the valid event in the same batch was not enqueued either


def test_publish_scopes_limit_what_a_key_may_publish_and_null_removes_them(stack: Stack, api: Any) -> None:
    created = stack.store().create("scoped", "https://p.example/h", [])
    path = f"/api/v1/admin/partners/{created.partner.id}"
    status, view, _ = api("PATCH", path, {"publishScopes": ["order.*", "cart.updated"]})
    assert status == 200 and view["publishScopes"] == ["order.*", "cart.updated"]
    assert api.publish(created.api_key, [{"eventType": "order.paid", "data": {}}])[0] == 202
    assert api.publish(created.api_key, [{"eventType": "cart.updated", "data": {}}])[0] == 202
    status, body = api.publish(created.api_key, [{"eventType": "cart.created", "data": {}}])
    assert status == 403 and "may not publish event type 'cart.created'" in body["error"]
    assert api("PATCH", path, {"publishScopes": ["endpoint.*"]})[0] == 200
    assert api.publish(created.api_key, [{"eventType": "endpoint.disabled", "data": {}}])[0] == 403
    status, view, _ = api("PATCH", path, {"publishScopes": None})
    assert status == 200 and view["publishScopes"] is None
    assert api.publish(created.api_key, [{"eventType": "cart.created", "data": {}}])[0] == 202
    assert api("PATCH", path, {"publishScopes": []})[0] == 400  # an empty scope list is a mistake
    assert len(queued(stack)) == 3
