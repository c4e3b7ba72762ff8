import json
import re

import pytest
from pydantic import TypeAdapter, ValidationError

from webhooks.models import Event, EventIn, SubscriptionPattern, new_event_id, utc_timestamp, webhook_body


def test_event_ids_are_event_underscore_24_lowercase_hex_and_unique() -> None:
    ids = {new_event_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"event_[0-9a-f]{24}", i) for i in ids)


def test_timestamps_are_iso_utc_with_milliseconds_like_javascript() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", utc_timestamp())


def test_webhook_body_is_compact_with_the_contract_key_order() -> None:
    event = Event(
        eventId="event_1",
        eventType="order.created",
        timestamp="2026-01-01T00:00:00.000Z",
        data={"z": 1, "a": "é"},
    )
    body = webhook_body(event)
    assert (
        body
        == (
            '{"eventId":"event_1","eventType":"order.created","timestamp":"2026-01-01T00:00:00.000Z",'
            '"data":{"z":1,"a":"é"}}'
        ).encode()
    )
    assert list(json.loads(body)) == ["eventId", "eventType", "timestamp", "data"]


def test_a_lone_surrogate_still_makes_valid_json() -> None:
    event = Event(eventId="e", eventType="t", timestamp="x", data={"s": "\ud800"})
    assert json.loads(webhook_body(event))["data"]["s"] == "\ud800"


@pytest.mark.parametrize("event_type", ["order.created", "a", "order.line_item.added", "v2.order-created"])
def test_valid_event_types(event_type: str) -> None:
    assert EventIn(eventType=event_type, data={}).eventType == event_type


@pytest.mark.parametrize(
    "event_type", ["Order.Created", "order.", ".order", "order..created", "order created", "", 5]
)
def test_invalid_event_types(event_type: object) -> None:
    with pytest.raises(ValidationError):
        EventIn.model_validate({"eventType": event_type, "data": {}})


@pytest.mark.parametrize("data", [[], "x", 1, None])
def test_data_must_be_an_object(data: object) -> None:
    with pytest.raises(ValidationError):
        EventIn.model_validate({"eventType": "a.b", "data": data})


@pytest.mark.parametrize("pattern", ["*", "order.*", "order.created", "a.b.*"])
def test_subscription_patterns(pattern: str) -> None:
    assert TypeAdapter(SubscriptionPattern).validate_python(pattern) == pattern


@pytest.mark.parametrize("pattern", ["order*", "*.created", "order.*.x", "ORDER.*", ""])
def test_bad_subscription_patterns(pattern: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(SubscriptionPattern).validate_python(pattern)
