"""Property-based: whatever body arrives, the API answers 2xx/4xx with a JSON body, never 500."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Stack
from support import api_event

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
event_types = st.one_of(
    st.from_regex(r"\A[a-z]{1,6}(\.[a-z]{1,6}){0,2}\Z"), st.text(max_size=12), st.integers()
)
events = st.fixed_dictionaries({"eventType": event_types, "data": json_values})
bodies = st.one_of(
    json_values.map(json.dumps),
    st.lists(events, min_size=0, max_size=5).map(json.dumps),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
)


def test_any_body_gets_a_json_answer_and_never_a_500(stack: Stack, function: Any) -> None:
    handler = function("ingest")
    api_key = stack.store().create("Fuzz", "https://f.example/h", []).api_key

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=bodies, idempotency=st.none() | st.text(max_size=300))
    def check(body: str, idempotency: str | None) -> None:
        headers = {"Idempotency-Key": idempotency} if idempotency is not None else {}
        result = handler(api_event(body, api_key, headers=headers), None)
        assert result["statusCode"] in (202, 400, 409, 413, 422), result
        payload = json.loads(result["body"])
        assert isinstance(payload, dict)
        assert ("error" in payload) != (result["statusCode"] == 202)

    check()
    stack.sqs.purge_queue(QueueUrl=stack.url("EVENTS_QUEUE_URL"))
