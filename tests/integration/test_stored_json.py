"""Producers' data and operators' schemas may use keys that JSON allows and BSON does not
("\\0", a leading "$", dots): stored and read back unchanged, over the MongoDB wire protocol.
Found by fuzzing the admin API past its key: such a schema was a 500."""

from __future__ import annotations

from datetime import UTC, datetime

from webhooks.ingest.catalog import EventTypeCatalog
from webhooks.models import Event, new_event_id
from webhooks.store.event_store import EventStore

from conftest import Stack

ODD = {"\u0000k": 1, "$set": {"a.b": [2, {"$where": "x"}]}, "": "empty", "ünï": None}


def test_event_data_with_keys_bson_refuses_is_stored_for_replay(stack: Stack) -> None:
    store = EventStore(stack.db)
    odd = Event(
        eventId=new_event_id(), eventType="order.created", timestamp="2026-11-29T00:00:00.000Z", data=ODD
    )
    plain = Event(
        eventId=new_event_id(), eventType="order.created", timestamp="2026-11-29T00:00:00.000Z", data={}
    )
    store.save([odd, plain])  # one odd event must not cost its neighbours their replay
    assert store.get(odd.eventId) == odd
    assert store.get_many([plain.eventId, odd.eventId]) == [plain, odd]


def test_events_stored_before_data_became_text_still_read(stack: Stack) -> None:
    stack.db["events"].insert_one(
        {
            "_id": "evt_old",
            "eventType": "order.created",
            "timestamp": "2026-11-01T00:00:00.000Z",
            "data": {"orderId": "1"},
            "storedAt": datetime.now(UTC),
        }
    )
    assert EventStore(stack.db).get("evt_old") == Event(
        eventId="evt_old",
        eventType="order.created",
        timestamp="2026-11-01T00:00:00.000Z",
        data={"orderId": "1"},
    )


def test_a_schema_with_any_keys_registers_and_validates(stack: Stack) -> None:
    catalog = EventTypeCatalog(stack.db, cache_ttl=0)
    schema = {"type": "object", "properties": {"$id-like": {"type": "string"}, "\u0000": {}}, "x-\u0000": 1}
    assert catalog.register("odd.keys", schema)["schema"] == schema
    validator = catalog.validators(["odd.keys"])["odd.keys"]
    assert catalog.errors(0, validator, {"$id-like": 5}) == ["[0].data.$id-like: 5 is not of type 'string'"]
    stack.db["eventTypes"].insert_one({"_id": "old.type", "schema": {"type": "object"}})
    old = catalog.get("old.type")
    assert old is not None and old["schema"] == {"type": "object"}  # stored before: still read
