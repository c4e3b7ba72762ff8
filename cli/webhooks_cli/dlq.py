"""The delivery DLQ for the CLI: the layer's :class:`webhooks.delivery.dead_letters.DeadLetters`
(one rule for every caller) over the settings' delivery log."""

from __future__ import annotations

from typing import Any

from webhooks.config import Settings
from webhooks.delivery.dead_letters import DeadLetters, Outstanding, Redriven
from webhooks.store.delivery_log import DeliveryLog
from webhooks.store.mongo import get_database


def dead_letters(client: Any, dlq_url: str, settings: Settings | None = None) -> DeadLetters:
    """Without a MongoDB (``settings`` None or no MONGO_URI) nothing counts as delivered since."""
    log = None
    if settings is not None and settings.mongo_uri:
        log = DeliveryLog(get_database(settings), settings.delivery_log_ttl_days)
    return DeadLetters(client, dlq_url, log)


def list_dead_letters(client: Any, dlq_url: str, settings: Settings | None = None) -> Outstanding:
    return dead_letters(client, dlq_url, settings).outstanding()


def redrive(
    client: Any, dlq_url: str, queue_url: str, event_id: str | None = None, settings: Settings | None = None
) -> Redriven:
    return dead_letters(client, dlq_url, settings).redrive(queue_url, event_id)
