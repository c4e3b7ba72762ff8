"""The partners of the load runs (test and bench): three healthy, one always failing."""

from __future__ import annotations

import os
from typing import Any

from webhooks.delivery.signing import generate_secret

LOAD_SUBSCRIPTIONS = {
    "producer": ["nothing.here"],  # posts the events
    "orders": ["order.*"],
    "everything": ["*"],
    "customers": ["customer.created"],
    "failing": ["order.created", "customer.*"],
}
LOAD_EVENT_TYPES = ["order.created", "order.updated", "customer.created", "customer.deleted", "inventory.low"]


def load_partners(urls: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "webhookUrl": urls.get(name, "https://unused.example/h"),
            "apiKey": f"load-{name}-{os.urandom(6).hex()}",
            "secretKey": generate_secret(),
            "events": events,
            "isActive": True,
        }
        for name, events in LOAD_SUBSCRIPTIONS.items()
    ]
