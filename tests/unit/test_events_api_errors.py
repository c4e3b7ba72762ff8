import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from webhooks.ingest.json_input import (
    MAX_DATA_DEPTH,
    MAX_SAFE_INTEGER,
    BodyError,
    format_errors,
    load_json,
    nested_too_deeply,
    parse_json,
)
from webhooks.models import events_in


def errors_for(value: object) -> str:
    with pytest.raises(ValidationError) as caught:
        events_in.validate_python(value)
    return format_errors(caught.value)


def test_errors_name_the_index_and_field() -> None:
    text = errors_for([{"eventType": "a.b", "data": {}}, {"eventType": 5, "data": []}])
    assert (
        text == "[1].eventType: Input should be a valid string; [1].data: Input should be a valid dictionary"
    )


def test_non_array_body() -> None:
    assert errors_for({"eventType": "a"}) == "body: Input should be a valid list"


def test_long_error_lists_are_capped() -> None:
    text = errors_for([{}] * 30)
    assert text.endswith("... and 40 more")


@pytest.mark.parametrize("raw", ["{", "[1,", "NaN", "[Infinity]", "", "[" * 100_000])
def test_bad_json_is_a_body_error(raw: str) -> None:
    with pytest.raises(BodyError):
        parse_json(raw)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_load_json_reads_what_the_json_module_reads(value: object) -> None:
    """Both parsers (orjson's fast path, the json module with number checks) give the same
    values, floats to the bit, whichever one a document takes."""
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        loaded, marked = load_json(text)
        assert not marked
        assert repr(loaded) == repr(json.loads(text))


@pytest.mark.parametrize(
    ("text", "marked"),
    [
        ("[999999999999999]", False),  # 15 digits: orjson
        ("[9007199254740991]", False),  # 16 digits, within 2^53-1: the json module
        ("[9007199254740992]", True),  # beyond: marked, never read as a float
        ("[18446744073709551616]", True),  # beyond 64 bits (orjson reads it as a float)
        ("[1.7976931348623157e308]", False),
        ("[1e309]", True),
        ('["\\ud800"]', False),  # a lone surrogate: orjson refuses it, the json module keeps it
    ],
)
def test_load_json_marks_the_numbers_it_must(text: str, marked: bool) -> None:
    loaded, was_marked = load_json(text)
    assert was_marked is marked
    if not marked:
        assert repr(loaded) == repr(json.loads(text))


def nested(depth: int) -> dict[str, object]:
    """Event data ``depth`` levels deep (the data object itself is level 1)."""
    value: object = {"leaf": 1}
    for n in range(depth - 1):  # objects and arrays in turn (arrays count as levels too)
        value = {"a": value} if (depth - n) % 2 == 0 else [value]
    assert isinstance(value, dict)
    return value


def depth_of(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def test_data_nested_beyond_the_limit_is_named_and_data_at_it_passes() -> None:
    at_limit, beyond = nested(MAX_DATA_DEPTH), nested(MAX_DATA_DEPTH + 1)
    assert depth_of(at_limit) == MAX_DATA_DEPTH and depth_of(beyond) == MAX_DATA_DEPTH + 1
    events = [
        {"eventType": "a.b", "data": at_limit},
        {"eventType": "a.b", "data": beyond},
        {"eventType": "a.b", "data": {"flat": "[[[[{{{{"}},
    ]
    body = json.dumps(events)
    assert nested_too_deeply(body, events_in.validate_python(events)) == [
        f"[1].data: nested deeper than {MAX_DATA_DEPTH} levels"
    ]
    del events[1]
    assert nested_too_deeply(json.dumps(events), events_in.validate_python(events)) == []


def test_flat_batches_are_not_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    import webhooks.ingest.json_input as json_input

    walked: list[object] = []

    def deeper_than(value: object, limit: int) -> bool:
        walked.append(value)
        return False

    monkeypatch.setattr(json_input, "deeper_than", deeper_than)
    events = [{"eventType": "a.b", "data": {"n": n, "tags": ["x"]}} for n in range(60)]
    assert nested_too_deeply(json.dumps(events), events_in.validate_python(events)) == []
    assert walked == []  # 60 nested lists in all: fewer than the limit, so none walked
