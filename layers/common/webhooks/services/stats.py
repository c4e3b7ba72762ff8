"""The console's overview: delivery counts and latency per partner over the last hour or
day, next to every partner's endpoint health and parked deliveries."""

from __future__ import annotations

from typing import Any

from ..delivery.parked import ParkedDeliveries
from ..partners.store import PartnerStore
from ..store.stats import DeliveryStats, Window
from .answers import Stats, answer
from .partners import readable_partners


class StatsService:
    def __init__(self, stats: DeliveryStats, store: PartnerStore, parked: ParkedDeliveries) -> None:
        self.stats = stats
        self.store = store
        self.parked = parked

    def overview(self, window: Window) -> dict[str, Any]:
        found = self.stats.overview(window)
        by_id = {p["partnerId"]: p for p in found["partners"]}
        partners, found["skipped"] = readable_partners(self.store.all())
        found["partners"] = [
            {
                "partnerId": partner.id,
                "name": partner.name,
                "isActive": partner.is_active,
                "endpoint": partner.public()["endpoint"],
                "parked": self.parked.count(partner.id) if partner.endpoint_disabled else 0,
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
