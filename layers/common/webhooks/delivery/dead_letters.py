"""The delivery DLQ as an operator sees it: list what is dead-lettered, send it back.

One rule for every caller (the CLI's ``webhooks dlq``, and any API or console route that
reads the DLQ): a dead letter whose delivery (same event, same endpoint) has succeeded since
it was dead-lettered (a replay, a ``replay --since``/recover, an endpoint's enable, or an
earlier redrive) is settled. A settled letter is removed from the DLQ when it is found, so
it is never listed and a redrive never sends it again. The delivery log decides: a
``delivered`` attempt to that endpoint later than the letter's arrival in the DLQ (its
SentTimestamp). A letter names its endpoint in its ``endpointId`` attribute (and its body);
one dead-lettered before endpoints existed names none: the partner's first endpoint. A
delivery of the same event to another endpoint of the partner settles nothing.

Works against moto, LocalStack or real SQS (boto3 client).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from pymongo.errors import PyMongoError

from ..endpoints.model import first_endpoint_id
from ..models import DeliveryMessage
from ..observability import logger
from ..store.delivery_log import DeliveryLog

LIST_VISIBILITY_SECONDS = 30  # a listing hides what it read this long, so none is read twice


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str]
    dead_lettered_at: datetime  # when it arrived in the DLQ

    def summary(self) -> dict[str, Any]:
        try:
            body = json.loads(self.body)
            event = body.get("event", {})
        except (ValueError, AttributeError):
            body, event = {}, {}
        status = self.attributes.get("lastStatus")
        partner_id = self.attributes.get("partnerId") or body.get("partnerId")
        endpoint_id = self.attributes.get("endpointId") or body.get("endpointId")
        if not endpoint_id and isinstance(partner_id, str) and partner_id:
            endpoint_id = first_endpoint_id(partner_id)  # dead-lettered before endpoints
        return {
            "eventId": self.attributes.get("eventId") or event.get("eventId"),
            "eventType": self.attributes.get("eventType") or event.get("eventType"),
            "partnerId": partner_id,
            "endpointId": endpoint_id,
            "attempts": int(self.attributes.get("attempts", "0") or 0),
            "lastStatus": int(status) if status and status.isdigit() else None,
            "lastError": self.attributes.get("lastError"),
            "messageId": self.message_id,
            "deadLetteredAt": self.dead_lettered_at.isoformat(),
        }

    @property
    def key(self) -> tuple[str, str]:
        """(eventId, endpointId): what a later delivery must match to settle the letter."""
        summary = self.summary()
        return str(summary["eventId"] or ""), str(summary["endpointId"] or "")


@dataclass
class Redriven:
    moved: list[dict[str, Any]] = field(default_factory=list)
    settled: list[dict[str, Any]] = field(default_factory=list)  # delivered since; removed, not sent
    # the delivery log was away: no letter could be checked for a delivery since, all were sent
    unchecked: bool = False


@dataclass
class Outstanding:
    letters: list[dict[str, Any]]
    unchecked: bool = False  # the delivery log was away: settled letters may be among them


class DeadLetters:
    def __init__(self, client: Any, dlq_url: str, log: DeliveryLog | None) -> None:
        self.client = client
        self.dlq_url = dlq_url
        self.log = log

    def outstanding(self) -> Outstanding:
        """What is dead-lettered and still undelivered (settled letters are removed)."""
        letters = self._receive_all()
        settled: list[DeadLetter] | None = None
        try:
            settled = self._settle(letters)
        finally:  # what the listing read and left in the DLQ is visible again at once
            self._release([d for d in letters if d not in (settled or [])])
        return Outstanding(
            [d.summary() for d in letters if d not in (settled or [])], unchecked=settled is None
        )

    def redrive(self, queue_url: str, event_id: str | None = None) -> Redriven:
        """Move dead letters (all, or those of one event) back to the delivery queue.

        Each is sent as a fresh delivery (same partner, endpoint and event; no prior attempts, hops,
        acceptance time, rate slot or wait: a letter the queue's redrive policy moved still
        carries them), as a new message, so it gets a full set of attempts and is not held
        to the age bound of its first try. A body that is not a delivery message is sent
        as it is (deliver dead-letters it again, with its reason). A message is deleted from
        the DLQ only after the send succeeded. Letters delivered since are removed instead
        of sent; when the delivery log is away, none can be checked and all are sent.
        """
        letters = self._receive_all()
        chosen = [d for d in letters if event_id is None or d.summary()["eventId"] == event_id]
        unsent = list(letters)
        try:
            self._release([d for d in letters if d not in chosen])
            settled = self._settle(chosen)
            result = Redriven(settled=[d.summary() for d in settled or []], unchecked=settled is None)
            unsent = [d for d in chosen if d not in (settled or [])]
            for letter in list(unsent):
                self._send_fresh(queue_url, letter)
                self.client.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=letter.receipt_handle)
                unsent.remove(letter)
                result.moved.append(letter.summary())
        finally:  # a failed send leaves the rest visible in the DLQ at once, not hidden
            if unsent:
                self._release(unsent)
        return result

    def _send_fresh(self, queue_url: str, letter: DeadLetter) -> None:
        try:
            old = DeliveryMessage.model_validate_json(letter.body)
        except ValidationError:
            body = letter.body
        else:
            fresh = DeliveryMessage(partnerId=old.partnerId, endpointId=old.endpointId, event=old.event)
            body = fresh.as_body()
        keep = {
            k: letter.attributes[k]
            for k in ("partnerId", "endpointId", "eventId", "eventType")
            if letter.attributes.get(k)
        }
        self.client.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in keep.items()},
        )

    def _settle(self, letters: list[DeadLetter]) -> list[DeadLetter] | None:
        """The letters delivered since they were dead-lettered, deleted from the DLQ; None
        when the delivery log could not be read (nothing is known to be settled)."""
        if self.log is None or not letters:
            return []
        try:
            delivered = self.log.last_delivered({d.key for d in letters})
        except PyMongoError as exc:
            logger.warning(
                "dead letters: the delivery log is unavailable, none checked for a delivery since",
                extra={"error": type(exc).__name__},
            )
            return None
        settled = [d for d in letters if d.key in delivered and delivered[d.key] > d.dead_lettered_at]
        self._delete(settled)
        for letter in settled:
            summary = letter.summary()
            logger.info(
                "dead letter removed: delivered since",
                extra={
                    "event_id": summary["eventId"],
                    "partner_id": summary["partnerId"],
                    "endpoint_id": summary["endpointId"],
                },
            )
        return settled

    def _receive_all(self) -> list[DeadLetter]:
        """Every message of the DLQ, each hidden for a while so none is read twice."""
        found: dict[str, DeadLetter] = {}
        while True:
            response = self.client.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                VisibilityTimeout=LIST_VISIBILITY_SECONDS,
                MessageAttributeNames=["All"],
                MessageSystemAttributeNames=["SentTimestamp"],
            )
            batch = response.get("Messages", [])
            if not batch:
                return list(found.values())
            for m in batch:
                attrs = {k: v.get("StringValue", "") for k, v in m.get("MessageAttributes", {}).items()}
                sent = int(m.get("Attributes", {}).get("SentTimestamp", "0") or 0)
                at = datetime.fromtimestamp(sent / 1000, UTC)
                found[m["MessageId"]] = DeadLetter(m["MessageId"], m["ReceiptHandle"], m["Body"], attrs, at)

    def _release(self, letters: Iterable[DeadLetter]) -> None:
        self._batch(letters, "change_message_visibility_batch", {"VisibilityTimeout": 0})

    def _delete(self, letters: Iterable[DeadLetter]) -> None:
        self._batch(letters, "delete_message_batch", {})

    def _batch(self, letters: Iterable[DeadLetter], call: str, extra: dict[str, Any]) -> None:
        """Up to ten letters a call; the entries SQS reports failed are logged, each with its
        letter's keys (a settled letter not deleted is found and settled again next time; one
        not released shows again when its listing visibility ends)."""
        chosen = list(letters)
        for start in range(0, len(chosen), 10):
            part = chosen[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": d.receipt_handle, **extra} for i, d in enumerate(part)]
            response = getattr(self.client, call)(QueueUrl=self.dlq_url, Entries=entries)
            for failed in response.get("Failed", []):
                summary = part[int(failed["Id"])].summary()
                logger.warning(
                    f"dead letters: {call} failed for a letter",
                    extra={
                        "event_id": summary["eventId"],
                        "partner_id": summary["partnerId"],
                        "endpoint_id": summary["endpointId"],
                        "code": failed.get("Code"),
                        "reason": failed.get("Message"),
                    },
                )
