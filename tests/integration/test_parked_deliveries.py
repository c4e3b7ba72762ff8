"""A parked delivery whose partner is deleted meanwhile is settled and leaves nothing parked."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Delivery, Stack


def test_a_partner_deleted_while_its_delivery_is_parked_leaves_nothing_parked(
    stack: Stack, delivery: Delivery, receiver_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webhooks.delivery.parked import ParkedDeliveries
    from webhooks.partners.model import PartnerNotFound
    from webhooks.partners.store import PartnerStore

    receiver = receiver_factory()
    pid = stack.store().create("parked", receiver.url, ["order.*"]).partner.id
    assert stack.store().disable_endpoint(pid, "test")
    real_get = PartnerStore.get

    def deleted_meanwhile(self: Any, partner_id: str) -> Any:
        if partner_id == pid:
            raise PartnerNotFound(partner_id)
        return real_get(self, partner_id)

    monkeypatch.setattr(PartnerStore, "get", deleted_meanwhile)  # after the cached read, before the fresh one
    monkeypatch.setattr(PartnerStore, "get_cached", lambda self, partner_id: real_get(self, partner_id))
    delivery.enqueue(pid)
    result, _ = delivery.run()
    assert result == {"batchItemFailures": []}  # settled, not an uncaught error retried forever
    assert ParkedDeliveries(stack.db).count(pid) == 0  # nothing left parked for nobody
    assert receiver.requests == []
