"""Endpoint event filters (webhooks.dispatch.filters): syntax, semantics, bounds, properties."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webhooks.dispatch.filters import (
    MAX_CONDITIONS,
    MAX_FILTER_BYTES,
    MAX_IN_VALUES,
    EventFilter,
    FilterError,
    compile_stored,
    matches,
    parse_filter,
)

EVENT = {
    "eventId": "event_0123456789abcdef01234567",
    "eventType": "order.created",
    "timestamp": "2026-12-05T08:00:00.000Z",
    "data": {
        "value": 150,
        "price": 9.5,
        "currency": "EUR",
        "paid": True,
        "note": None,
        "tags": ["new", "vip"],
        "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
        "customer": {"country": "HU", "id": "42"},
    },
}


def passes(document: Any, event: Any = EVENT) -> bool:
    return matches(parse_filter(document), event)


# -- syntax -----------------------------------------------------------------------------------


def test_nested_field_objects_are_nested_paths_and_a_plain_value_means_eq() -> None:
    assert passes({"data": {"customer": {"country": "HU"}}})
    assert not passes({"data": {"customer": {"country": "DE"}}})
    assert passes({"data": {"customer": {"country": {"$eq": "HU"}}}})


def test_a_dotted_key_is_the_same_path_as_nested_objects() -> None:
    assert passes({"data.customer.country": "HU"})
    assert passes({"data": {"customer.country": "HU"}})
    assert not passes({"data.customer.country": "DE"})


def test_a_decimal_segment_indexes_an_array() -> None:
    assert passes({"data": {"items": {"1": {"sku": "B-2"}}}})
    assert passes({"data.items.0.qty": {"$gte": 2}})
    assert not passes({"data.items.2.sku": {"$exists": True}})
    assert not passes({"data.customer.0": {"$exists": True}})  # an object has no index


def test_every_condition_of_an_object_must_hold() -> None:
    assert passes({"eventType": "order.created", "data": {"value": {"$gte": 100, "$lt": 200}}})
    assert not passes({"eventType": "order.created", "data": {"value": {"$gte": 100, "$lt": 150}}})


def test_or_and_and_at_the_top_and_relative_to_the_path_they_sit_in() -> None:
    assert passes({"$or": [{"eventType": "order.paid"}, {"data": {"value": {"$gt": 100}}}]})
    assert not passes({"$or": [{"eventType": "order.paid"}, {"data": {"value": {"$gt": 150}}}]})
    assert passes({"$and": [{"eventType": "order.created"}, {"data.currency": "EUR"}]})
    assert not passes({"$and": [{"eventType": "order.created"}, {"data.currency": "USD"}]})
    assert passes({"data": {"$or": [{"currency": "USD"}, {"customer": {"country": "HU"}}]}})
    assert not passes({"data": {"$or": [{"currency": "USD"}, {"eventType": "order.created"}]}})


def test_an_empty_filter_passes_every_event() -> None:
    assert passes({}) and passes({}, event={}) and passes({}, event=None)


def test_convoys_exist_spelling_means_exists() -> None:
    assert (
        parse_filter({"data": {"note": {"$exist": True}}}).root
        == parse_filter({"data": {"note": {"$exists": True}}}).root
    )


# -- semantics --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"data.value": {"$eq": 150}}, True),
        ({"data.value": {"$eq": 150.0}}, True),  # numbers by value
        ({"data.value": {"$neq": 150}}, False),
        ({"data.value": {"$neq": 151}}, True),
        ({"eventType": {"$in": ["order.created", "order.paid"]}}, True),
        ({"eventType": {"$in": ["order.paid"]}}, False),
        ({"eventType": {"$nin": ["order.paid"]}}, True),
        ({"eventType": {"$nin": ["order.created"]}}, False),
        ({"data.value": {"$gt": 149}}, True),
        ({"data.value": {"$gt": 150}}, False),
        ({"data.value": {"$gte": 150}}, True),
        ({"data.value": {"$lt": 150}}, False),
        ({"data.value": {"$lte": 150}}, True),
        ({"data.price": {"$lt": 10}}, True),
        ({"timestamp": {"$gte": "2026-12-01"}}, True),  # strings by code point
        ({"timestamp": {"$lt": "2026-12-01"}}, False),
        ({"data.note": {"$exists": True}}, True),  # null is a value
        ({"data.missing": {"$exists": True}}, False),
        ({"data.missing": {"$exists": False}}, True),
        ({"data.note": None}, True),
        ({"data.missing": None}, False),  # a missing field is not null
        ({"data.paid": True}, True),
    ],
)
def test_each_operator(condition: dict[str, Any], expected: bool) -> None:
    assert passes(condition) is expected


@pytest.mark.parametrize("op", ["$gt", "$gte", "$lt", "$lte"])
def test_a_number_and_a_string_never_compare(op: str) -> None:
    assert not passes({"data.value": {op: "150"}})
    assert not passes({"data.customer.id": {op: 42}})
    assert not passes({"data.paid": {op: 0}})  # true is not a number
    assert not passes({"data.tags": {op: "a"}})  # nor is an array
    assert not passes({"data.missing": {op: 1}})


def test_true_is_not_one_and_a_string_is_not_its_number() -> None:
    assert not passes({"data.paid": 1})
    assert not passes({"data.value": "150"})
    assert not passes({"data.customer.id": 42})
    assert passes({"data.paid": {"$nin": [1, "true"]}})


def test_an_array_field_equals_a_value_it_contains() -> None:
    assert passes({"data.tags": "vip"})
    assert passes({"data.tags": {"$in": ["gold", "vip"]}})
    assert not passes({"data.tags": {"$in": ["gold"]}})
    assert passes({"data.tags": {"$nin": ["gold"]}})
    assert not passes({"data.tags": {"$neq": "vip"}})


def test_a_missing_field_matches_only_the_negations_and_exists_false() -> None:
    assert passes({"data.missing": {"$neq": 1}}) and passes({"data.missing": {"$nin": [1]}})
    assert not passes({"data.missing": {"$eq": 1}}) and not passes({"data.missing": {"$in": [1]}})
    assert not passes({"data.value.deeper": 1})  # a path through a scalar is missing


def test_events_that_are_not_objects_simply_do_not_match() -> None:
    events: list[Any] = [[], "text", 5, None, {"data": "not an object"}]
    for event in events:
        assert not passes({"data.value": {"$exists": True}}, event=event)
        assert passes({"data.value": {"$exists": False}}, event=event)


def test_the_compiled_filter_is_immutable_and_independent_of_its_input() -> None:
    document: dict[str, Any] = {"data": {"value": {"$in": [150]}}}
    parsed = parse_filter(document)
    document["data"]["value"]["$in"].append(1)
    document["data"]["value"] = 1
    assert matches(parsed, EVENT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.document = "{}"  # type: ignore[misc]
    assert json.loads(parsed.document) == {"data": {"value": {"$in": [150]}}}
    assert parsed.conditions == 1


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "filter: must be a JSON object"),
        ({"data": {"value": {"$gte": True}}}, "filter.data.value.$gte: must be a number or string"),
        ({"data": {"value": {"$gte": [1]}}}, "filter.data.value.$gte: must be a number or string"),
        (
            {"data": {"value": {"$regex": "^1"}}},
            "filter.data.value.$regex: unknown operator; use one of "
            "$eq $neq $in $nin $gt $gte $lt $lte $exists $and $or",
        ),
        (
            {"eventType": {"$in": "order.created"}},
            f"filter.eventType.$in: must be an array of 1 to {MAX_IN_VALUES} values",
        ),
        (
            {"eventType": {"$nin": []}},
            f"filter.eventType.$nin: must be an array of 1 to {MAX_IN_VALUES} values",
        ),
        (
            {"eventType": {"$in": ["a", {"b": 1}]}},
            "filter.eventType.$in[1]: must be a string, number, boolean or null",
        ),
        (
            {"data": {"value": {"$eq": {"a": 1}}}},
            "filter.data.value.$eq: must be a string, number, boolean or null",
        ),
        ({"data": {"note": {"$exists": "yes"}}}, "filter.data.note.$exists: must be true or false"),
        ({"$or": {"eventType": "a"}}, "filter.$or: must be a non-empty array of filters (objects)"),
        ({"$and": []}, "filter.$and: must be a non-empty array of filters (objects)"),
        ({"$or": [{"eventType": "a"}, "b"]}, "filter.$or[1]: must be a filter: a non-empty object"),
        (
            {"$or": [{"data": {"a": {"$exists": 1}}}]},
            "filter.$or[0].data.a.$exists: must be true or false",
        ),
        (
            {"value": {"$gte": 100}},
            "filter.value: the event has no field 'value': a path starts at eventId, eventType, timestamp, data",
        ),
        (
            {"$gte": 1},
            'filter.$gte: compares a field: put it in one, e.g. {"data": {"value": {"$gte": ...}}}',
        ),
        ({"data": {}}, "filter.data: an empty object sets no condition"),
        ({"data..value": 1}, "filter.data..value: a field name must not be empty or start with $"),
        ({"data.$gte": 1}, "filter.data.$gte: a field name must not be empty or start with $"),
        (
            {"data": {"tags": ["vip"]}},
            'filter.data.tags: an array is an operand of $in, $nin, $and or $or only: {"$in": [...]}',
        ),
        ({"data": {"value": float("nan")}}, "filter.data.value: must be a finite number"),
        ({"data": {"value": float("inf")}}, "filter.data.value: must be a finite number"),
        ({"data": {"value": {1, 2}}}, "filter.data.value: is not a JSON value"),
        ({"data": {1: 2}}, "filter.data: keys must be strings of valid Unicode"),
        ({"data": {"value": "\ud800"}}, "filter.data.value: must be valid Unicode (no lone surrogates)"),
    ],
)
def test_invalid_filters_are_refused_naming_the_path(document: Any, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(document)
    assert str(caught.value) == message


def test_the_error_is_a_value_error_listed_like_pydantics() -> None:
    with pytest.raises(ValueError) as caught:
        parse_filter({"$or": [{"data": {"value": {"$gt": None}}}]})
    assert isinstance(caught.value, FilterError)
    assert caught.value.errors() == [
        {
            "type": "event_filter",
            "loc": ("filter", "$or", 0, "data", "value", "$gt"),
            "msg": "must be a number or string",
        }
    ]


def test_depth_is_bounded_at_eight_levels() -> None:
    eight = {"data": {"a": {"b": {"c": {"d": {"e": {"f": {"$eq": 1}}}}}}}}
    assert parse_filter(eight).conditions == 1
    nine = {"data": {"a": {"b": {"c": {"d": {"e": {"f": {"$in": [1]}}}}}}}}
    with pytest.raises(
        FilterError, match=r"^filter\.data\.a\.b\.c\.d\.e\.f\.\$in: nests deeper than 8 levels$"
    ):
        parse_filter(nine)


def test_a_very_deep_input_is_refused_without_recursing_through_it() -> None:
    deep: dict[str, Any] = {"$exists": True}
    for _ in range(100_000):  # far past Python's recursion limit
        deep = {"a": deep}
    with pytest.raises(FilterError, match="nests deeper than 8 levels"):
        parse_filter({"data": deep})


def test_size_is_bounded_in_utf8_bytes_serialized() -> None:
    prefix = len('{"data":{"s":""}}')
    assert parse_filter({"data": {"s": "x" * (MAX_FILTER_BYTES - prefix)}})
    with pytest.raises(
        FilterError, match=f"^filter: is {MAX_FILTER_BYTES + 1} bytes serialized, more than 4096$"
    ):
        parse_filter({"data": {"s": "x" * (MAX_FILTER_BYTES - prefix + 1)}})
    with pytest.raises(FilterError, match=r"^filter: is 4217 bytes serialized"):
        parse_filter({"data": {"s": "é" * 2100}})  # 2,100 characters, 4,200 bytes


def test_a_huge_input_is_refused_before_it_is_serialized() -> None:
    with pytest.raises(FilterError, match=r"^filter: is larger than 4096 bytes serialized$"):
        parse_filter({"data": {"value": {"$in": list(range(1_000_000))}}})


def test_conditions_are_bounded() -> None:
    fifty = {"data": {f"c{i}": i for i in range(MAX_CONDITIONS)}}
    assert parse_filter(fifty).conditions == MAX_CONDITIONS
    with pytest.raises(FilterError, match=r"^filter\.data\.c50: the filter has more than 50 conditions$"):
        parse_filter({"data": {f"c{i}": i for i in range(MAX_CONDITIONS + 1)}})


def test_in_takes_at_most_max_in_values() -> None:
    assert parse_filter({"data.value": {"$in": list(range(MAX_IN_VALUES))}})
    with pytest.raises(
        FilterError, match=r"^filter\.data\.value\.\$in: must be an array of 1 to 100 values$"
    ):
        parse_filter({"data.value": {"$in": list(range(MAX_IN_VALUES + 1))}})


# -- properties -------------------------------------------------------------------------------

NAMES = st.sampled_from(["value", "tags", "a", "b", "0", "1"])
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 1))
    | st.sampled_from(["", "a", "b", "vip", "1", "order.created"])
)
JSON = st.recursive(
    SCALARS | st.integers() | st.floats() | st.text(max_size=5),  # NaN and ±inf too: json.loads reads them
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NAMES, inner, max_size=4),
    max_leaves=20,
)
EVENTS = (
    st.fixed_dictionaries(
        {
            "eventId": st.just("event_1"),
            "eventType": st.sampled_from(["order.created", "order.paid", "a"]),
            "timestamp": st.sampled_from(["2026-12-05T08:00:00.000Z", "2025-01-01T00:00:00.000Z"]),
            "data": st.dictionaries(NAMES, JSON, max_size=5),
        }
    )
    | JSON
)
PATHS = st.one_of(
    st.sampled_from([("eventType",), ("timestamp",), ("data",)]),
    st.lists(NAMES, min_size=1, max_size=3).map(lambda names: ("data", *names)),
)
# in FILTERS, wrapped in one more $and/$or by the tests: within MAX_DEPTH
SHALLOW_PATHS = st.one_of(
    st.sampled_from([("eventType",), ("timestamp",), ("data",)]), NAMES.map(lambda name: ("data", name))
)
ORDERED = st.floats(-3, 3, allow_nan=False).map(lambda x: round(x, 1)) | st.sampled_from(
    ["", "a", "b", "2026"]
)
CONDITIONS = st.one_of(
    SCALARS,
    st.builds(lambda v: {"$eq": v}, SCALARS),
    st.builds(lambda v: {"$neq": v}, SCALARS),
    st.builds(lambda vs: {"$in": vs}, st.lists(SCALARS, min_size=1, max_size=4)),
    st.builds(lambda vs: {"$nin": vs}, st.lists(SCALARS, min_size=1, max_size=4)),
    st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), ORDERED),
    st.builds(lambda v: {"$exists": v}, st.booleans()),
)


def _nest(path: tuple[str, ...], condition: Any) -> dict[str, Any]:
    document = condition
    for name in reversed(path):
        document = {name: document}
    return dict(document)


LEAVES = st.builds(_nest, SHALLOW_PATHS, CONDITIONS)
FILTERS = LEAVES | st.builds(
    lambda op, parts: {op: parts}, st.sampled_from(["$and", "$or"]), st.lists(LEAVES, min_size=1, max_size=3)
)
OPERATOR_KEYS = st.sampled_from(
    ["$eq", "$neq", "$in", "$nin", "$gt", "$lte", "$exists", "$and", "$or", "$regex", "$"]
)
ANY_DOCUMENTS = st.recursive(
    SCALARS | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            NAMES | OPERATOR_KEYS | st.sampled_from(["data", "eventType", "data.a", ""]), inner, max_size=3
        )
    ),
    max_leaves=15,
)


@given(FILTERS, EVENTS)
def test_matches_never_raises_for_any_json_event_and_is_deterministic(
    document: dict[str, Any], event: Any
) -> None:
    parsed = parse_filter(document)
    assert matches(parsed, event) is matches(parse_filter(document), event)


@given(ANY_DOCUMENTS)
def test_parse_filter_returns_a_filter_or_raises_filter_error(document: Any) -> None:
    try:
        parsed = parse_filter(document)
    except FilterError as exc:
        assert str(exc).startswith("filter")
    else:
        assert isinstance(parsed, EventFilter)
        assert parse_filter(json.loads(parsed.document)) == parsed


@given(FILTERS, EVENTS)
def test_and_of_one_filter_is_the_filter(document: dict[str, Any], event: Any) -> None:
    assert passes({"$and": [document]}, event) is passes(document, event)


@given(FILTERS, FILTERS, EVENTS)
def test_or_is_either_and_and_is_both(first: dict[str, Any], second: dict[str, Any], event: Any) -> None:
    one, two = passes(first, event), passes(second, event)
    assert passes({"$or": [first, second]}, event) is (one or two)
    assert passes({"$and": [first, second]}, event) is (one and two)


@given(PATHS, st.lists(SCALARS, min_size=1, max_size=4), EVENTS)
def test_nin_is_not_in_and_in_is_or_of_eq(path: tuple[str, ...], values: list[Any], event: Any) -> None:
    inside = passes(_nest(path, {"$in": values}), event)
    assert passes(_nest(path, {"$nin": values}), event) is (not inside)
    assert passes({"$or": [_nest(path, {"$eq": value}) for value in values]}, event) is inside
    assert passes({"$or": [_nest(path, value) for value in values]}, event) is inside


@given(PATHS, SCALARS, EVENTS)
def test_neq_is_not_eq_and_in_of_one_is_eq(path: tuple[str, ...], value: Any, event: Any) -> None:
    equal = passes(_nest(path, {"$eq": value}), event)
    assert passes(_nest(path, {"$neq": value}), event) is (not equal)
    assert passes(_nest(path, {"$in": [value]}), event) is equal


@given(PATHS, ORDERED, EVENTS)
def test_range_operators_agree_with_each_other(path: tuple[str, ...], bound: Any, event: Any) -> None:
    below = passes(_nest(path, {"$lt": bound}), event)
    at_or_above = passes(_nest(path, {"$gte": bound}), event)
    above = passes(_nest(path, {"$gt": bound}), event)
    assert not (below and at_or_above)
    assert passes(_nest(path, {"$lte": bound}), event) is (below or (at_or_above and not above))
    if above:
        assert at_or_above
    if below or at_or_above:
        assert passes(_nest(path, {"$exists": True}), event)


@given(ORDERED | st.booleans() | st.none() | st.lists(ORDERED, max_size=2), ORDERED)
def test_lt_and_gte_split_values_of_the_same_kind_and_refuse_any_other(value: Any, bound: Any) -> None:
    event = {"data": {"x": value}}
    below = passes({"data.x": {"$lt": bound}}, event)
    at_or_above = passes({"data.x": {"$gte": bound}}, event)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (value, bound))
    if numbers or (isinstance(value, str) and isinstance(bound, str)):
        assert below is not at_or_above
        assert below is (value < bound)
    else:
        assert not below and not at_or_above


def test_a_stored_filter_is_compiled_once_per_distinct_text() -> None:
    stored = {"data": {"value": {"$gte": 100}}}
    compiled = compile_stored(stored)
    assert isinstance(compiled, EventFilter) and matches(compiled, EVENT)
    assert compile_stored({"data": {"value": {"$gte": 100}}}) is compiled  # another endpoint's copy
    assert compile_stored({"data": {"value": {"$gte": 200}}}) is not compiled


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ({"data": {"$regex": "x"}}, "filter.data.$regex: unknown operator"),
        ("data.value > 100", "filter: must be a JSON object"),
        ({"timestamp": {"$gt": datetime(2026, 12, 5, tzinfo=UTC)}}, "filter: holds a value that is not JSON"),
    ],
)
def test_a_stored_filter_that_no_longer_parses_comes_back_as_its_error(stored: Any, problem: str) -> None:
    compiled = compile_stored(stored)
    assert isinstance(compiled, FilterError) and str(compiled).startswith(problem)
