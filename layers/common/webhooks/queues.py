"""SQS access: the client factory and the small queue interface the core depends on.

The core (ingest, dispatch, deliver) only sees :class:`Queue`, so unit tests can hand it
an in-memory fake and integration tests the real client against moto's server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .config import Settings
from .models import utf8_size
from .observability import logger

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 1_048_576  # SendMessageBatch: sum of all bodies
SEND_ATTEMPTS = 3  # a batch entry SQS refused is tried again, this many times in all
ATTRIBUTES_ALLOWANCE = 200  # bytes counted per entry for its message attributes

# Our own bounds on messages that dispatch and deliver send back to their own trigger queues
# (Lambda's recursive-loop detection is off for both: it would drop a long backoff or a
# partner's long pause after about 16 hops, with no log line of ours). Far beyond any
# legitimate chain: a delivery hops once per retry, deferral or put-back, and once a day or so
# while it waits out a long retry (delivery/flow_control.py: a fresh copy every few
# receives). The age bound is the longest retry schedule (30 days, config.
# SCHEDULE_BOUND_SECONDS) and 5 days for pauses, deferrals and outages on the way.
MAX_HOPS = 10_000
MAX_AGE_SECONDS = 35 * 86_400

_clients: dict[tuple[str | None, str, str | None], Any] = {}
_lock = threading.Lock()


def sqs_client(settings: Settings) -> Any:
    """One boto3 SQS client per endpoint per process (clients are thread-safe)."""
    key = (settings.aws_endpoint_url, settings.aws_region, settings.localstack_host)
    with _lock:
        client = _clients.get(key)
        if client is None:
            client = _make_client(settings)
            _clients[key] = client
    return client


def _make_client(settings: Settings) -> Any:
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        # Fail fast (an API request must answer within API Gateway's 29 s, retries included);
        # our long polls wait at most a few seconds.
        connect_timeout=2,
        read_timeout=5,
        max_pool_connections=max(10, settings.worker_concurrency * 2),
    )
    if settings.localstack_host:
        import localstack_client.session  # development-only dependency

        session = localstack_client.session.Session(region_name=settings.aws_region)
        return session.client("sqs", config=config)
    # one session, asked for its credentials too (a second one cost ~10 ms of a cold start)
    session = boto3.session.Session()
    kwargs: dict[str, Any] = {"region_name": settings.aws_region, "config": config}
    if settings.aws_endpoint_url:
        kwargs["endpoint_url"] = settings.aws_endpoint_url
        # Emulators accept any credentials; real AWS gets the default chain.
        if session.get_credentials() is None:
            kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")
    return session.client("sqs", **kwargs)


def string_attributes(values: Mapping[str, object]) -> dict[str, dict[str, str]]:
    """SQS message attributes from plain values (None values are left out)."""
    return {
        k: {"DataType": "String", "StringValue": str(v)}
        for k, v in values.items()
        if v is not None and str(v) != ""
    }


@dataclass(frozen=True)
class OutgoingMessage:
    id: str
    body: str
    attributes: Mapping[str, object] | None = None


class Queue(Protocol):
    def send(
        self, body: str, attributes: Mapping[str, object] | None = None, delay_seconds: int = 0
    ) -> str: ...

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        """Send up to 10 messages; return the ids of those SQS did not accept."""
        ...

    def change_visibility(self, receipt_handle: str, seconds: int) -> None: ...


class SqsQueue:
    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url

    def send(self, body: str, attributes: Mapping[str, object] | None = None, delay_seconds: int = 0) -> str:
        kwargs: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": body}
        if attributes:
            kwargs["MessageAttributes"] = string_attributes(attributes)
        if delay_seconds:
            kwargs["DelaySeconds"] = delay_seconds
        return str(self.client.send_message(**kwargs)["MessageId"])

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[str]:
        if not messages:
            return []
        entries = []
        for m in messages:
            entry: dict[str, Any] = {"Id": m.id, "MessageBody": m.body}
            if m.attributes:
                entry["MessageAttributes"] = string_attributes(m.attributes)
            entries.append(entry)
        response = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
        return [f["Id"] for f in response.get("Failed", [])]

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )


@dataclass
class SendOutcome:
    unsent: set[str]  # ids SQS did not take, after every attempt
    unavailable: bool = False  # a whole call failed (the queue unreachable or refusing)
    rejected: bool = False  # SQS refused some entries of a call it answered


# map() itself, or an executor's map: how the batch calls of one round are run
GroupMap = Callable[..., Iterable[tuple[set[str], bool]]]


def send_all(queue: Queue, messages: Sequence[OutgoingMessage], map_groups: GroupMap = map) -> SendOutcome:
    """Send ``messages`` in as few SendMessageBatch calls as the limits allow (10 entries,
    1 MiB), retrying what SQS refused; never raises. ``map_groups`` may run the calls in
    parallel (an executor's ``map``)."""
    outcome = SendOutcome({m.id for m in messages})

    def send(group: list[OutgoingMessage]) -> tuple[set[str], bool]:
        try:
            return set(queue.send_batch(group)), False
        except (BotoCoreError, ClientError) as exc:
            logger.warning("queue batch send failed", extra={"error": describe_error(exc)})
            return {m.id for m in group}, True

    for _ in range(SEND_ATTEMPTS):
        if not outcome.unsent:
            break
        todo = [m for m in messages if m.id in outcome.unsent]
        sizes = [utf8_size(m.body) + (ATTRIBUTES_ALLOWANCE if m.attributes else 0) for m in todo]
        groups = [[todo[i] for i in g] for g in batch_groups(sizes)]
        run = map_groups if len(groups) > 1 else map  # one call: no hand-off to another thread
        for group, (refused, failed) in zip(groups, run(send, groups), strict=True):
            outcome.unavailable |= failed
            outcome.rejected |= bool(refused) and not failed
            outcome.unsent -= {m.id for m in group} - refused
    return outcome


def loop_bound(hops: int, accepted_at: float, now: float) -> str | None:
    """Why a message re-sent ``hops`` times since ``accepted_at`` (epoch seconds) must stop,
    or None while it is within :data:`MAX_HOPS` and :data:`MAX_AGE_SECONDS`."""
    if hops > MAX_HOPS:
        return f"re-sent {hops} times, over the bound of {MAX_HOPS}"
    age = now - accepted_at
    if age > MAX_AGE_SECONDS:
        return f"accepted {age / 86_400:.1f} days ago, over the bound of {MAX_AGE_SECONDS // 86_400} days"
    return None


def describe_error(exc: BaseException) -> str:
    """An AWS error for a log line: its code, never its message (which may quote input)."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def batch_groups(sizes: Sequence[int]) -> list[list[int]]:
    """Indexes grouped into SendMessageBatch calls: at most 10 entries and 1 MiB each, in order."""
    groups: list[list[int]] = []
    total = 0
    for index, size in enumerate(sizes):
        if not groups or len(groups[-1]) == MAX_BATCH_ENTRIES or total + size > MAX_BATCH_BYTES:
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += size
    return groups
