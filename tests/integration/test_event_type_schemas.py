"""Event type schemas: $refs outside the schema never fetched, size and depth bounded, regex time bounded."""

from __future__ import annotations

import json
from typing import Any

from conftest import Stack
from support import Receiver, Reply


def test_schema_refs_outside_the_schema_are_refused_and_never_fetched(stack: Stack, api: Any) -> None:
    target = Receiver([Reply(200, body=b'{"type": "string"}')])
    try:
        for ref in (
            target.url,
            "file:///etc/passwd",
            "other.json",
            "https://json-schema.org/draft/2020-12/schema",
        ):
            schema = {"type": "object", "properties": {"x": {"$ref": ref}}}
            status, body, _ = api("PUT", "/api/v1/admin/event-types/order.created", {"schema": schema})
            assert status == 400 and "points outside the schema" in body["error"], body
        local = {
            "type": "object",
            "$defs": {"id": {"type": "string"}},
            "properties": {"x": {"$ref": "#/$defs/id"}},
        }
        assert api("PUT", "/api/v1/admin/event-types/order.created", {"schema": local})[0] == 200
        key = stack.store().create("p", "https://p.example/h", []).api_key
        status, body = api.publish(key, [{"eventType": "order.created", "data": {"x": 5}}])
        assert status == 400 and "[0].data.x: 5 is not of type 'string'" in body["error"]
        # a schema stored before these checks (written straight to the database) is not
        # fetched either: the event is refused with a 400, not a 500
        stack.db["eventTypes"].insert_one(
            {"_id": "order.paid", "schema": {"properties": {"x": {"$ref": target.url}}}}
        )
        status, body = api.publish(key, [{"eventType": "order.paid", "data": {"x": 1}}])
        assert status == 400 and "schema cannot be applied" in body["error"], body
        assert "root:" not in body["error"]
        assert target.requests == []
    finally:
        target.close()


def test_schemas_too_large_or_too_deep_are_refused_with_a_400(api: Any) -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(400):
        deep = {"type": "object", "properties": {"a": deep}}
    status, body, _ = api("PUT", "/api/v1/admin/event-types/deep.one", {"schema": deep})
    assert status == 400 and "nested deeper than" in body["error"]
    big = {
        "type": "object",
        "properties": {f"p{i}": {"type": "string", "description": "x" * 100} for i in range(1000)},
    }
    status, body, _ = api("PUT", "/api/v1/admin/event-types/big.one", {"schema": big})
    assert status == 400 and "larger than" in body["error"]
    status, body, _ = api(
        "PUT", "/api/v1/admin/event-types/pp.one", {"schema": {"patternProperties": {"^a": {}}}}
    )
    assert status == 400 and "patternProperties" in body["error"]


def test_a_backtracking_pattern_fails_one_event_instead_of_stalling_the_process(
    stack: Stack, api: Any
) -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a|a)*$"}}}
    # refused at registration now; one stored before that check still only fails its event
    assert api("PUT", "/api/v1/admin/event-types/code.sent", {"schema": schema})[0] == 400
    stack.db["eventTypes"].insert_one({"_id": "code.sent", "schemaJson": json.dumps(schema)})
    key = stack.store().create("p", "https://p.example/h", []).api_key
    status, body = api.publish(key, [{"eventType": "code.sent", "data": {"code": "a" * 40 + "!"}}])
    assert status == 400 and "took too long" in body["error"], body
    assert api.publish(key, [{"eventType": "code.sent", "data": {"code": "aaaa"}}])[0] == 202
