"""Ingest logs through the shared Powertools logger."""

from __future__ import annotations


def test_ingest_logs_through_the_powertools_logger() -> None:
    import webhooks.ingest.enqueue
    import webhooks.observability

    assert getattr(webhooks.ingest.enqueue, "logger") is webhooks.observability.logger  # noqa: B009
