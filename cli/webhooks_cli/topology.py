"""The queues and their attributes: the same values as ``infra/template.yaml``.

``tests/unit/test_template.py`` checks that the template and this file agree, so the
local runtime and AWS run with the same visibility timeouts, redrive and retention.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

# Function timeouts in the template (seconds); visibility timeouts are 6x, as AWS advises
# for SQS event sources.
FUNCTION_TIMEOUTS = {"ingest": 25, "dispatch": 30, "deliver": 60}
EVENTS_MAX_RECEIVE_COUNT = 20  # with the store-outage backoff: ~45 min of outage before the DLQ
DELIVERY_MAX_RECEIVE_COUNT = 10  # a crash net only: attempts are counted in the message, not here
MAIN_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
MAX_MESSAGE_BYTES = 262_144


@dataclass(frozen=True)
class QueueSpec:
    key: str  # the env var that holds its URL
    name: str
    visibility_timeout: int
    retention: int
    dlq_key: str | None = None
    max_receive_count: int | None = None

    def attributes(self, dlq_arn: str | None = None) -> dict[str, str]:
        attrs = {
            "VisibilityTimeout": str(self.visibility_timeout),
            "MessageRetentionPeriod": str(self.retention),
            "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
        }
        if dlq_arn and self.max_receive_count:
            attrs["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receive_count}
            )
        return attrs


QUEUES = (
    QueueSpec("EVENTS_DLQ_URL", "webhooks-events-dlq", 30, DLQ_RETENTION_SECONDS),
    QueueSpec("DELIVERY_DLQ_URL", "webhooks-delivery-dlq", 30, DLQ_RETENTION_SECONDS),
    QueueSpec(
        "EVENTS_QUEUE_URL",
        "webhooks-events",
        6 * FUNCTION_TIMEOUTS["dispatch"],
        MAIN_RETENTION_SECONDS,
        "EVENTS_DLQ_URL",
        EVENTS_MAX_RECEIVE_COUNT,
    ),
    QueueSpec(
        "DELIVERY_QUEUE_URL",
        "webhooks-delivery",
        6 * FUNCTION_TIMEOUTS["deliver"],
        MAIN_RETENTION_SECONDS,
        "DELIVERY_DLQ_URL",
        DELIVERY_MAX_RECEIVE_COUNT,
    ),
)


def create_queues(client: Any, prefix: str = "") -> dict[str, str]:
    """Create the queues if missing (DLQs first); return env var name -> queue URL.

    A queue that already exists is used as it is, even with other attributes (a test may
    make one with a short visibility timeout first).
    """
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for spec in QUEUES:
        name = prefix + spec.name
        dlq_arn = arns.get(spec.dlq_key) if spec.dlq_key else None
        try:
            url = client.create_queue(QueueName=name, Attributes=spec.attributes(dlq_arn))["QueueUrl"]
        except client.exceptions.QueueNameExists:
            url = client.get_queue_url(QueueName=name)["QueueUrl"]
        urls[spec.key] = url
        arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        arns[spec.key] = arn
    return urls
