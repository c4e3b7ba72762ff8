"""A disabled endpoint's delivery parked while the partner store stops answering: deferred
or parked, never both (which would deliver it twice). In-memory queue, store and parking."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from pymongo.errors import ServerSelectionTimeoutError

from webhooks.config import load_settings
from webhooks.delivery.batch import Batch
from webhooks.delivery.deliverer import Deliverer
from webhooks.delivery.receipt import Receipt
from webhooks.models import DeliveryMessage, Event, new_event_id, utc_timestamp

AWAY = ServerSelectionTimeoutError("127.0.0.1:1: connection refused")


class MemoryQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    def send(self, body: str, attributes: Mapping[str, object] | None = None, delay_seconds: int = 0) -> str:
        self.sent.append((body, delay_seconds))
        return "id"


class StoreAwayAfterTheCache:
    """The cached endpoint (disabled) is served; the re-read past the cache fails."""

    def get_cached(self, partner_id: str, endpoint_id: str | None) -> Any:
        return SimpleNamespace(id="ep_1", partner_id=partner_id, is_active=True, endpoint_disabled=True)

    def get(self, partner_id: str, endpoint_id: str) -> Any:
        raise AWAY


class Parking:
    def __init__(self, unpark_raises: bool) -> None:
        self.kept: set[str] = set()
        self.unpark_raises = unpark_raises

    def park(self, message: DeliveryMessage) -> str:
        self.kept.add("k")
        return "k"

    def unpark(self, key: str) -> bool:
        if self.unpark_raises:
            raise AWAY
        taken = key in self.kept
        self.kept.discard(key)
        return taken


def run(parking: Parking) -> tuple[str, MemoryQueue]:
    queue = MemoryQueue()
    deliverer = Deliverer(
        load_settings(),
        StoreAwayAfterTheCache(),  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        queue,  # type: ignore[arg-type]
        MemoryQueue(),  # type: ignore[arg-type]
        rng=random.Random(1),
        parked=parking,  # type: ignore[arg-type]
    )
    event = Event(eventId=new_event_id(), eventType="order.created", timestamp=utc_timestamp(), data={})
    body = DeliveryMessage(partnerId="p1", event=event).as_body()
    now = time.time()
    outcome = deliverer.deliver(body, Receipt("r1", 1, now, now), Batch()).outcome
    return outcome, queue


def test_a_delivery_parked_when_the_store_stops_answering_is_taken_back_and_deferred() -> None:
    parking = Parking(unpark_raises=False)
    outcome, queue = run(parking)
    assert outcome == "deferred"
    assert parking.kept == set()
    [(_, delay)] = queue.sent
    assert 10 <= delay <= 15


def test_a_parked_delivery_that_cannot_be_taken_back_stays_parked_and_is_not_also_deferred() -> None:
    parking = Parking(unpark_raises=True)
    outcome, queue = run(parking)
    assert outcome == "parked"
    assert parking.kept == {"k"} and queue.sent == []
