"""Inspect and redrive the delivery DLQ (works against moto, LocalStack or real SQS)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

LIST_VISIBILITY_SECONDS = 30


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]

    def summary(self) -> dict[str, Any]:
        try:
            event = json.loads(self.body).get("event", {})
        except (ValueError, AttributeError):
            event = {}
        status = self.attributes.get("lastStatus")
        return {
            "eventId": self.attributes.get("eventId") or event.get("eventId"),
            "eventType": self.attributes.get("eventType") or event.get("eventType"),
            "partnerId": self.attributes.get("partnerId"),
            "attempts": int(self.attributes.get("attempts", "0") or 0),
            "lastStatus": int(status) if status and status.isdigit() else None,
            "lastError": self.attributes.get("lastError"),
            "messageId": self.message_id,
        }


def _receive_all(client: Any, dlq_url: str) -> list[DeadLetter]:
    """Every message of the DLQ, each hidden for a while so none is read twice."""
    found: dict[str, DeadLetter] = {}
    while True:
        response = client.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=LIST_VISIBILITY_SECONDS,
            MessageAttributeNames=["All"],
        )
        batch = response.get("Messages", [])
        if not batch:
            return list(found.values())
        for m in batch:
            attrs = {k: v.get("StringValue", "") for k, v in m.get("MessageAttributes", {}).items()}
            found[m["MessageId"]] = DeadLetter(m["MessageId"], m["ReceiptHandle"], m["Body"], attrs)


def _release(client: Any, dlq_url: str, letters: list[DeadLetter]) -> None:
    for start in range(0, len(letters), 10):
        chunk = letters[start : start + 10]
        client.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": d.receipt_handle, "VisibilityTimeout": 0}
                for i, d in enumerate(chunk)
            ],
        )


def list_dead_letters(client: Any, dlq_url: str) -> list[dict[str, Any]]:
    letters = _receive_all(client, dlq_url)
    _release(client, dlq_url, letters)
    return [d.summary() for d in letters]


def redrive(client: Any, dlq_url: str, queue_url: str, event_id: str | None = None) -> list[dict[str, Any]]:
    """Move dead letters (all, or those of one event) back to the delivery queue.

    The body is sent unchanged (same eventId), as a new message, so it gets a full set of
    attempts. A message is deleted from the DLQ only after the send succeeded.
    """
    letters = _receive_all(client, dlq_url)
    chosen = [d for d in letters if event_id is None or d.summary()["eventId"] == event_id]
    _release(client, dlq_url, [d for d in letters if d not in chosen])
    moved = []
    for letter in chosen:
        keep = {
            k: letter.attributes[k] for k in ("partnerId", "eventId", "eventType") if letter.attributes.get(k)
        }
        client.send_message(
            QueueUrl=queue_url,
            MessageBody=letter.body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in keep.items()},
        )
        client.delete_message(QueueUrl=dlq_url, ReceiptHandle=letter.receipt_handle)
        moved.append(letter.summary())
    return moved
