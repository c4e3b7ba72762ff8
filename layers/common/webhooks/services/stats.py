"""The console's overview: delivery counts and latency per partner over the last hour or
day, next to every partner's endpoint health and parked deliveries.

A partner's ``endpoint`` is the health of the one of its endpoints that needs attention
most (disabled first, then the longest failure streak; the first endpoint when they are
alike) and ``parked`` sums the deliveries parked at all its disabled endpoints: a disabled
second endpoint never hides behind a healthy first one. Each endpoint's own health is on
its page (``GET .../endpoints``)."""

from __future__ import annotations

from typing import Any

from ..delivery.parked import ParkedDeliveries
from ..endpoints.model import Endpoint
from ..endpoints.store import EndpointStore
from ..partners.model import Partner
from ..partners.store import PartnerStore
from ..store.stats import DeliveryStats, Window
from .answers import Stats, answer
from .partners import readable_partners


def worst(healths: list[dict[str, Any]]) -> dict[str, Any]:
    """The health that needs attention most; the earliest of equals (the first endpoint's)."""
    return max(healths, key=lambda h: (h["status"] == "disabled", h["consecutiveFailures"]))


class StatsService:
    def __init__(
        self, stats: DeliveryStats, store: PartnerStore, parked: ParkedDeliveries, endpoints: EndpointStore
    ) -> None:
        self.stats = stats
        self.store = store
        self.parked = parked
        self.endpoints = endpoints

    def overview(self, window: Window) -> dict[str, Any]:
        found = self.stats.overview(window)
        by_id = {p["partnerId"]: p for p in found["partners"]}
        partners, found["skipped"] = readable_partners(self.store.all())
        others = self.endpoints.others_of(partners)
        found["partners"] = [
            {
                "partnerId": partner.id,
                "name": partner.name,
                "isActive": partner.is_active,
                **self._health(partner, others.get(partner.id, [])),
                **{
                    k: v
                    for k, v in by_id.get(
                        partner.id, {"delivered": 0, "failed": 0, "deadLettered": 0}
                    ).items()
                    if k != "partnerId"
                },
            }
            for partner in partners
        ]
        return answer(Stats, found)

    def _health(self, partner: Partner, others: list[Endpoint]) -> dict[str, Any]:
        """``endpoint``: the worst of the partner's endpoints' health; ``parked``: what its
        disabled endpoints hold (counted only for those: parking needs a disabled endpoint)."""
        first: dict[str, Any] = partner.public()["endpoint"]
        parked = self.parked.count(partner.id) if partner.endpoint_disabled else 0
        parked += sum(self.parked.count(partner.id, e.id) for e in others if e.endpoint_disabled)
        return {"endpoint": worst([first] + [e.public()["health"] for e in others]), "parked": parked}
