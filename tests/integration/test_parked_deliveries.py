"""A parked delivery whose partner is deleted meanwhile is settled and leaves nothing parked."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Delivery, Stack


def test_a_partner_deleted_while_its_delivery_is_parked_leaves_nothing_parked(
    stack: Stack, delivery: Delivery, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webhooks.delivery.parked import ParkedDeliveries
    from webhooks.endpoints.store import EndpointStore
    from webhooks.partners.model import PartnerNotFound

    receiver = receiver_factory()
    pid = stack.store().create("parked", receiver.url, ["order.*"]).partner.id
    assert stack.store().disable_endpoint(pid, "test")
    real_get = EndpointStore.get

    def deleted_meanwhile(self: Any, partner_id: str, endpoint_id: str) -> Any:
        if partner_id == pid:
            raise PartnerNotFound(partner_id)
        return real_get(self, partner_id, endpoint_id)

    # after the cached read (CACHE_TTL_SECONDS=0: a read of its own), before the fresh one
    monkeypatch.setattr(EndpointStore, "get", deleted_meanwhile)
    delivery.enqueue(pid)
    result, _ = delivery.run()
    assert result == {"batchItemFailures": []}  # settled, not an uncaught error retried forever
    assert ParkedDeliveries(stack.db).count(pid) == 0  # nothing left parked for nobody
    assert receiver.requests == []
