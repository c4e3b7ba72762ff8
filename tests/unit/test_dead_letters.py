"""The DLQ's batch calls report the entries SQS refused (a fake client: SQS's partial failures
are not something a real queue produces on demand)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from webhooks import observability
from webhooks.delivery.dead_letters import DeadLetters


class RefusingSqs:
    """One dead letter to receive; every batch entry fails."""

    def __init__(self) -> None:
        self.batches: list[str] = []
        self.received = False

    def receive_message(self, **_: Any) -> dict[str, Any]:
        if self.received:
            return {}
        self.received = True
        attributes = {k: {"StringValue": v} for k, v in {"eventId": "e1", "partnerId": "p1"}.items()}
        return {
            "Messages": [
                {
                    "MessageId": "m1",
                    "ReceiptHandle": "h1",
                    "Body": "{}",
                    "MessageAttributes": attributes,
                    "Attributes": {"SentTimestamp": "1000"},
                }
            ]
        }

    def _refuse(self, call: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append(call)
        return {
            "Successful": [],
            "Failed": [{"Id": e["Id"], "Code": "ReceiptHandleIsInvalid"} for e in Entries],
        }

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return self._refuse("delete", Entries)

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        return self._refuse("release", Entries)


class DeliveredLog:
    def last_delivered(self, keys: set[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
        return {key: datetime.now(UTC) for key in keys}


def test_a_settled_letter_sqs_would_not_delete_is_logged_with_its_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warnings: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(observability.logger, "warning", lambda msg, extra: warnings.append((msg, extra)))
    sqs = RefusingSqs()
    outstanding = DeadLetters(sqs, "dlq", DeliveredLog()).outstanding()  # type: ignore[arg-type]
    assert outstanding.letters == [] and sqs.batches == ["delete"]
    assert warnings == [
        (
            "dead letters: delete_message_batch failed for a letter",
            {
                "event_id": "e1",
                "partner_id": "p1",
                "endpoint_id": "ep_p1",  # dead-lettered without one: the partner's first endpoint
                "code": "ReceiptHandleIsInvalid",
                "reason": None,
            },
        )
    ]
