"""The event type catalog: registered schemas are enforced at ingest, errors name the field."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from webhooks_cli.main import main

from conftest import Stack
from support import api_event, drain

ORDER_SCHEMA = {
    "type": "object",
    "required": ["orderId", "total"],
    "properties": {"orderId": {"type": "string"}, "total": {"type": "number", "minimum": 0}},
}


@pytest.fixture
def admin_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ADMIN_API_KEY", "catalog-admin-key")
    return "catalog-admin-key"


@pytest.fixture
def ingest(stack: Stack, function: Any, admin_key: str) -> Any:
    handler = function("ingest")

    def call(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        result = handler(event)
        return result["statusCode"], json.loads(result["body"])

    return call


def register(
    ingest: Any, name: str, schema: Any, key: str = "catalog-admin-key"
) -> tuple[int, dict[str, Any]]:
    reply: tuple[int, dict[str, Any]] = ingest(
        api_event(
            json.dumps({"schema": schema, "description": "orders"}),
            method="PUT",
            path=f"/api/v1/admin/event-types/{name}",
            headers={"X-Admin-Key": key},
        )
    )
    return reply


def test_registered_schemas_are_enforced_and_errors_name_the_field(stack: Stack, ingest: Any) -> None:
    key = stack.store().create("p", "https://p.example/h", []).api_key
    assert register(ingest, "order.created", ORDER_SCHEMA)[0] == 200
    good = [
        {"eventType": "order.created", "data": {"orderId": "1", "total": 9.5}},
        {"eventType": "unregistered.type", "data": {"anything": True}},
    ]
    assert ingest(api_event(json.dumps(good), key))[0] == 202
    bad = [
        {"eventType": "order.created", "data": {"orderId": "1", "total": 9.5}},
        {"eventType": "order.created", "data": {"orderId": 7, "total": -1}},
        {"eventType": "order.created", "data": {"orderId": "2"}},
    ]
    status, body = ingest(api_event(json.dumps(bad), key))
    assert status == 400
    assert body["error"] == (
        "Invalid request body. Errors: [1].data.orderId: 7 is not of type 'string'; "
        "[1].data.total: -1 is less than the minimum of 0; [2].data: 'total' is a required property"
    )
    assert len(drain(stack.sqs, stack.url("EVENTS_QUEUE_URL"))) == 1  # only the good request


def test_unregistered_types_can_be_refused(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch, admin_key: str
) -> None:
    monkeypatch.setenv("UNREGISTERED_EVENT_TYPES", "reject")
    handler = function("ingest")
    key = stack.store().create("p", "https://p.example/h", []).api_key
    result = handler(api_event(json.dumps([{"eventType": "mystery.event", "data": {}}]), key))
    assert result["statusCode"] == 400
    assert (
        "[0].eventType: 'mystery.event' is not a registered event type" in json.loads(result["body"])["error"]
    )


def test_catalog_management(stack: Stack, ingest: Any) -> None:
    assert register(ingest, "order.created", {"type": "nonsense-type"})[0] == 400  # not a JSON Schema
    assert register(ingest, "Bad Name", ORDER_SCHEMA)[0] == 400
    assert register(ingest, "order.created", ORDER_SCHEMA, key="wrong")[0] == 401
    assert register(ingest, "order.created", ORDER_SCHEMA)[0] == 200
    headers = {"X-Admin-Key": "catalog-admin-key"}
    status, body = ingest(api_event(None, method="GET", path="/api/v1/admin/event-types", headers=headers))
    assert status == 200 and [t["name"] for t in body["eventTypes"]] == ["order.created"]
    assert body["eventTypes"][0]["schema"] == ORDER_SCHEMA
    path = "/api/v1/admin/event-types/order.created"
    assert ingest(api_event(None, method="DELETE", path=path, headers=headers))[0] == 200
    assert ingest(api_event(None, method="GET", path=path, headers=headers))[0] == 404


def test_cli_registers_and_lists(stack: Stack, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    schema_file = tmp_path / "order.json"
    schema_file.write_text(json.dumps(ORDER_SCHEMA))
    assert main(["event-types", "register", "order.created", "--schema", str(schema_file)]) == 0
    assert main(["event-types", "list"]) == 0
    out = capsys.readouterr().out
    assert '"name": "order.created"' in out
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    assert main(["event-types", "register", "x.y", "--schema", str(bad)]) == 2
    assert "cannot read JSON" in capsys.readouterr().err
    assert sys.executable


def publish(ingest: Any, key: str, events: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    reply: tuple[int, dict[str, Any]] = ingest(api_event(json.dumps(events), key))
    return reply


@pytest.mark.parametrize("pattern", ["^(a+)+$", "(a*)*", "^(a|a)*$", r"^(\w+\s?)+$", r"^(\d+|x)*$"])
def test_catastrophic_patterns_are_refused_when_the_event_type_is_registered(
    stack: Stack, ingest: Any, pattern: str
) -> None:
    schema = {"type": "object", "properties": {"codes": {"type": "array", "items": {"pattern": pattern}}}}
    status, body = register(ingest, "code.sent", schema)
    assert status == 400, body
    assert f"pattern {pattern!r} may backtrack catastrophically" in body["error"]
    assert stack.db["eventTypes"].count_documents({}) == 0


def test_patterns_that_cannot_backtrack_catastrophically_are_accepted(stack: Stack, ingest: Any) -> None:
    for pattern in (r"^([a-z]+\.)+[a-z]+$", r"^(\d{3}-)+$", r"^(com|org)+$", r"^\S+@\S+\.\S+$", r"^(?>a+)+$"):
        status, body = register(ingest, "code.sent", {"properties": {"c": {"pattern": pattern}}})
        assert status == 200, (pattern, body)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"child": {"$ref": "#"}}},
        {
            "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"properties": {"x": {"$ref": "#/$defs/a"}}}},
            "$ref": "#/$defs/a",
        },
        {"$defs": {"n": {"$anchor": "n", "properties": {"kids": {"items": {"$ref": "#n"}}}}}, "$ref": "#n"},
        {"properties": {"x": {"$dynamicRef": "#meta"}}},
    ],
    ids=["root", "defs-loop", "anchor-loop", "dynamic"],
)
def test_self_referencing_schemas_are_refused_at_registration(
    stack: Stack, ingest: Any, schema: dict[str, Any]
) -> None:
    status, body = register(ingest, "tree.sent", schema)
    assert status == 400, body
    assert "refer" in body["error"] and "itself" in body["error"]
    shared = {"$defs": {"money": {"type": "number"}}, "properties": {"a": {"$ref": "#/$defs/money"}}}
    assert register(ingest, "tree.sent", shared)[0] == 200  # a reference that does not loop is fine


def test_one_request_stops_validating_at_the_first_pattern_that_runs_out_of_time(
    stack: Stack, ingest: Any
) -> None:
    # a catastrophic pattern on array items, stored before registration refused it
    schema = {"type": "object", "properties": {"codes": {"type": "array", "items": {"pattern": "^(a|a)*$"}}}}
    stack.db["eventTypes"].insert_one({"_id": "code.sent", "schemaJson": json.dumps(schema)})
    key = stack.store().create("p", "https://p.example/h", []).api_key
    hostile = {"codes": ["a" * 40 + "!"] * 20}
    status, body = publish(ingest, key, [{"eventType": "code.sent", "data": hostile}] * 3)
    assert status == 400, body
    # one error, the first item's: nothing after it was matched (each of the 60 items would
    # have run to the per-match limit)
    assert body["error"] == (
        "Invalid request body. Errors: [0].data.codes[0]: does not match '^(a|a)*$' "
        "(the pattern took too long to check)"
    )
    assert drain(stack.sqs, stack.url("EVENTS_QUEUE_URL")) == []
    assert publish(ingest, key, [{"eventType": "code.sent", "data": {"codes": ["aaa"]}}])[0] == 202
