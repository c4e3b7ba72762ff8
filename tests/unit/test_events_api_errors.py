import pytest
from pydantic import TypeAdapter, ValidationError

from webhooks.events_api import BodyError, format_errors, parse_json
from webhooks.models import EventIn


def errors_for(value: object) -> str:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(list[EventIn]).validate_python(value)
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
