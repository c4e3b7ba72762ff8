"""Aggregates for the console (operator): deliveries per bucket and per partner."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from ..services.answers import Stats
from ..store.stats import Window
from .context import admin_operation, ok, services

router = Router()  # under /api/v1/admin
admin = admin_operation(router, "deliveries")


@admin("GET", "/stats", 400, responses=ok(Stats))
def delivery_stats(
    window: Annotated[Window, Query(description="the last hour (per minute) or day (per hour)")] = "hour",
) -> dict[str, Any]:
    """Deliveries per minute or hour (delivered, failed, dead-lettered, events accepted),
    and per partner: totals, latency p50/p95 and endpoint health"""
    return services(router).stats.overview(window)
