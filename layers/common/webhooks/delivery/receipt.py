"""One receive of a delivery message, as Lambda's SQS record describes it: its handle, its
receive count and when it can have been received (SQS caps a visibility at 12 h from it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Lambda's longest batching window: a record can have been received this long before the
# invocation that handles it started
MAX_BATCHING_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class Receipt:
    """One receive of a message, as Lambda's record describes it."""

    handle: str
    count: int = 1  # ApproximateReceiveCount
    sent_at: float | None = None  # SentTimestamp, epoch seconds
    # the earliest this receive can have happened (epoch seconds): SQS caps a message's
    # visibility at 12 h from its receive
    received_at: float | None = None

    @classmethod
    def of(cls, handle: str, attributes: Mapping[str, str], invoked_at: float) -> Receipt:
        """From a record's ``attributes``. The first receive's time is SQS's own
        (ApproximateFirstReceiveTimestamp); a later one's is not given, so it is taken as
        early as it can be: the invocation's start less Lambda's longest batching window."""
        count = int(attributes.get("ApproximateReceiveCount") or 1)
        sent = attributes.get("SentTimestamp")
        first = attributes.get("ApproximateFirstReceiveTimestamp")
        received_at = invoked_at - MAX_BATCHING_WINDOW_SECONDS
        if count == 1 and first:
            received_at = min(int(first) / 1000, invoked_at)
        return cls(handle, count, int(sent) / 1000 if sent else None, received_at)
