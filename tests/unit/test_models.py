import json
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from webhooks.json_stringify import js_number_text, stringify
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


# printed by Node 20's JSON.stringify (node -e 'console.log(JSON.stringify([...]))'), the
# Node service's way of writing a producer's numbers into the body it signed
NUMBERS = [1.0, 100.0, -0.0, 0.1, -2.5, 123.456, 1e-4, 1e-5, 1.5e-5, 1e-6, 1.5e-6, 1e-7, 1.5e-7]
NUMBERS += [5e-324, 1e15, 1e16, 1.2345678901234568e20, 1e21, 1.5e21, 1.7976931348623157e308, -1e-7]
NUMBERS += [0.000123, 12345678.9, 2.0**53, 2.0**53 + 2, 4.35, 0.30000000000000004]
STRINGIFIED = (
    "[1,100,0,0.1,-2.5,123.456,0.0001,0.00001,0.000015,0.000001,0.0000015,1e-7,1.5e-7,5e-324,"
    "1000000000000000,10000000000000000,123456789012345680000,1e+21,1.5e+21,1.7976931348623157e+308,"
    "-1e-7,0.000123,12345678.9,9007199254740992,9007199254740994,4.35,0.30000000000000004]"
)


def test_webhook_body_writes_numbers_as_json_stringify_does() -> None:
    event = Event(eventId="e", eventType="t", timestamp="x", data={"n": NUMBERS, "i": 7, "s": "1.0"})
    body = webhook_body(event)
    assert (
        body
        == f'{{"eventId":"e","eventType":"t","timestamp":"x","data":{{"n":{STRINGIFIED},"i":7,"s":"1.0"}}}}'.encode()
    )
    # the same doubles, read back as JavaScript reads numbers
    assert json.loads(body, parse_int=float)["data"]["n"] == NUMBERS


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_number_is_written_so_that_it_reads_back_the_same(value: float) -> None:
    text = js_number_text(value)
    assert float(text) == value
    assert re.fullmatch(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?(e[+-][0-9]+)?", text), text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_the_body_writes_every_number_as_javascript_prints_it(value: float) -> None:
    body = webhook_body(Event(eventId="e", eventType="t", timestamp="x", data={"n": [value]}))
    assert body.endswith(f'"data":{{"n":[{js_number_text(value)}]}}}}'.encode())


def test_a_producers_string_shaped_like_a_placeholder_is_left_as_it_is() -> None:
    data = {"s": "js-number:0000000000000000:0", "n": 1e-7}
    body = webhook_body(Event(eventId="e", eventType="t", timestamp="x", data=data))
    assert json.loads(body)["data"] == data


NODE = json.loads((Path(__file__).parent / "fixtures" / "json_stringify.json").read_text())


def test_two_thousand_doubles_are_written_byte_for_byte_as_node_wrote_them() -> None:
    numbers = [struct.unpack("<d", struct.pack("<Q", int(h, 16)))[0] for h in NODE["bits"]]
    assert stringify(numbers) == NODE["numbers_stringified"]


def test_array_index_keys_come_first_in_ascending_order_as_node_writes_them() -> None:
    data = json.loads(NODE["keys_input"])
    assert stringify(data) == NODE["keys_stringified"]
    body = webhook_body(Event(eventId="e", eventType="t", timestamp="x", data={"n": [data]}))
    assert body.endswith(f'"data":{{"n":[{NODE["keys_stringified"]}]}}}}'.encode())


def test_data_without_floats_or_index_keys_is_written_as_json_dumps_writes_it() -> None:
    data = {"b": [1, "x", {"z": None, "c": True, "é": "ü"}], "a": -2}
    assert stringify(data) == json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def test_many_numbers_that_need_their_own_spelling_are_all_written() -> None:
    # each below 1e-4: written through a placeholder, all of them in one pass
    data = {"n": [k * 1e-7 for k in range(1, 20_001)]}
    assert json.loads(stringify(data)) == data
    assert stringify(data).count("e-") == sum("e-" in js_number_text(v) for v in data["n"])


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
