import json
import re

import pytest
from pydantic import TypeAdapter, ValidationError

from webhooks.models import (
    Event,
    SubscriptionPattern,
    events_in,
    new_event_id,
    new_event_ids,
    to_json,
    utc_timestamp,
    webhook_body,
)


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
    assert events_in.validate_python([{"eventType": event_type, "data": {}}])[0]["eventType"] == event_type


@pytest.mark.parametrize(
    "event_type", ["Order.Created", "order.", ".order", "order..created", "order created", "", 5]
)
def test_invalid_event_types(event_type: object) -> None:
    with pytest.raises(ValidationError):
        events_in.validate_python([{"eventType": event_type, "data": {}}])


@pytest.mark.parametrize("data", [[], "x", 1, None])
def test_data_must_be_an_object(data: object) -> None:
    with pytest.raises(ValidationError):
        events_in.validate_python([{"eventType": "a.b", "data": data}])


@pytest.mark.parametrize("pattern", ["*", "order.*", "order.created", "a.b.*"])
def test_subscription_patterns(pattern: str) -> None:
    assert TypeAdapter(SubscriptionPattern).validate_python(pattern) == pattern


@pytest.mark.parametrize("pattern", ["order*", "*.created", "order.*.x", "ORDER.*", ""])
def test_bad_subscription_patterns(pattern: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(SubscriptionPattern).validate_python(pattern)


@pytest.mark.parametrize(
    "value",
    [
        {"text": "ü\u2028 中文", "n": 1, "f": 0.1, "none": None},
        {"lone": "\ud800 and \udfff"},  # orjson refuses these: the json module writes them
        {"big": 2**70},  # beyond 64 bits: the json module too
        {"odd": "\ufffe\uffff"},  # SQS refuses these characters
    ],
)
def test_queue_json_is_compact_reads_back_and_holds_nothing_sqs_refuses(value: dict[str, object]) -> None:
    text = to_json(value)
    assert json.loads(text) == value
    assert ", " not in text and ": " not in text
    assert not re.search("[\ud800-\udfff\ufffe\uffff]", text)
    assert "中文" in text or "中文" not in str(value)  # UTF-8 as it came, not \u escapes


@pytest.mark.parametrize("count", [0, 1, 2, 100, 1000])
def test_new_event_ids_are_as_many_distinct_ids_shaped_like_one(count: int) -> None:
    ids = new_event_ids(count)
    assert len(ids) == len(set(ids)) == count
    shape = re.compile(r"event_[0-9a-f]{24}")
    assert all(shape.fullmatch(i) for i in ids)
    assert shape.fullmatch(new_event_id())
