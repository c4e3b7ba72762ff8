"""Fan-out to many endpoints: one event subscribed by 1,000 endpoints.

Two shapes (--shape): ``endpoints`` (the default), 20 partners with 50 endpoints each (the
first, the partner document's own URL, and 49 more: MAX_ENDPOINTS_PER_PARTNER is 50, so one
partner cannot hold 1,000), every endpoint with a filter the event passes (so each of the 1,000
filters is evaluated); ``partners``, 1,000 partners with one subscription each and no filter
(the figure before endpoints existed).

1. The real dispatch handler on one SQS record holding one envelope with that event (its
   subscription query, 1,000 delivery messages in SendMessageBatch calls over its 4 threads),
   against the raw SendMessageBatch calls for the same 1,000 messages (the bodies and message
   attributes dispatch sent, received back from the queue) made with boto3 over 4 threads,
   same moto server, same run, rounds interleaved. Wall time and CPU (this process's: the
   handler and its threads; the servers run in their own processes). Target (issue 34):
   dispatch at most 1.3x the raw calls (median of the rounds). Exits 1 on a miss.
2. Subscriptions are read in one query per batch: the reads of the partner store's
   subscriptions, partners and endpoints collections during an invocation with a cold
   subscription cache are counted (must be 1: the aggregation that joins them).
3. The time until all 1,000 receivers have the event: dispatch, then the real deliver handler
   driven by this bench (4 concurrent invocations, each a batch of 10 received from the
   delivery queue, as Lambda's event source would hand them) POSTing to 4 real HTTP receivers
   on 127.0.0.1 that stand in for the 1,000 endpoints (250 each).

Run: .venv/bin/python bench/bench_fanout.py [--shape endpoints|partners] [--endpoints 1000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhooks_cli.lambdas import LambdaContext, load_handler

from common import CountingReceiver, handler_servers
from support import sqs_event

TARGET = 1.3
EVENT_TYPE = "order.created"
THREADS = 4  # dispatch's executor (functions/dispatch/app.py)
PER_PARTNER = 50  # webhooks.endpoints.store.MAX_ENDPOINTS_PER_PARTNER
FILTER = {"data": {"total": {"$gte": 10}}}  # the event's total is 12.5: every filter passes


class CountingCollection:
    """A pymongo collection whose reads are counted (the subscription query check)."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.collection, name)
        if name in ("find", "find_one", "aggregate", "count_documents"):
            self.reads += 1
        return attribute


def envelope_record(n: int) -> dict[str, Any]:
    body = json.dumps(
        {
            "version": 1,
            "source": "bench",
            "events": [
                {
                    "eventId": f"event_fanout_{n}_{uuid.uuid4().hex[:12]}",
                    "eventType": EVENT_TYPE,
                    "timestamp": "2026-12-05T09:00:00.000Z",
                    "data": {"orderId": str(n), "total": 12.5, "sku": "ABC-123"},
                }
            ],
        }
    )
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"bench-{n}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": str(int(time.time() * 1000))},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:events",
                "awsRegion": "us-east-1",
            }
        ]
    }


def drain(client: Any, queue_url: str, count: int) -> list[dict[str, Any]]:
    """Receive and delete ``count`` messages (their bodies and attributes kept)."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        messages = client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            raise RuntimeError(f"only {len(got)} of {count} messages on the delivery queue")
        client.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        got.extend(messages)
    return got


def raw_send(client: Any, queue_url: str, messages: list[dict[str, Any]], pool: ThreadPoolExecutor) -> None:
    """The same messages in SendMessageBatch calls of 10, over the same number of threads."""
    groups = [messages[i : i + 10] for i in range(0, len(messages), 10)]

    def send(group: list[dict[str, Any]]) -> None:
        entries = [
            {"Id": str(n), "MessageBody": m["Body"], "MessageAttributes": m.get("MessageAttributes", {})}
            for n, m in enumerate(group)
        ]
        failed = client.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        if failed:
            raise RuntimeError(f"raw SendMessageBatch refused {failed}")

    list(pool.map(send, groups))


def timed(work: Any) -> tuple[float, float]:
    """(wall ms, CPU ms of this process) of ``work()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=("endpoints", "partners"), default="endpoints")
    parser.add_argument("--endpoints", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    count = args.endpoints

    receivers = [CountingReceiver() for _ in range(4)]
    try:
        with handler_servers() as (client, urls):
            os.environ.update({"ALLOW_PRIVATE_DESTINATIONS": "true", "WORKER_CONCURRENCY": "10"})
            from webhooks.config import load_settings
            from webhooks.endpoints.model import first_endpoint_id
            from webhooks.endpoints.store import EndpointStore
            from webhooks.partners.store import PartnerStore
            from webhooks.store.mongo import get_database

            db = get_database(load_settings())
            store = PartnerStore(db, cache_ttl=0)
            store.ensure_indexes()
            endpoint_store = EndpointStore(db, store)
            endpoint_store.ensure_indexes()
            if args.shape == "partners":
                for n in range(count):
                    store.create(f"fanout-{n}", receivers[n % len(receivers)].url, [EVENT_TYPE])
                shape = f"{count} partners, one endpoint each, no filter"
            else:
                for n in range(0, count, PER_PARTNER):
                    pid = store.create(
                        f"fanout-{n}", receivers[n % len(receivers)].url, [EVENT_TYPE]
                    ).partner.id
                    endpoint_store.update(pid, first_endpoint_id(pid), {"filter": FILTER})
                    for m in range(n + 1, min(n + PER_PARTNER, count)):
                        url = receivers[m % len(receivers)].url
                        endpoint_store.create(pid, {"url": url, "filter": FILTER}, [EVENT_TYPE])
                shape = (
                    f"{count} endpoints: {-(-count // PER_PARTNER)} partners x {PER_PARTNER} endpoints, "
                    "each with a filter the event passes"
                )
            dispatch = load_handler("dispatch")
            deliver = load_handler("deliver")
            dispatcher = sys.modules["webhooks_function_dispatch"].dispatcher
            queue = urls["DELIVERY_QUEUE_URL"]

            def dispatch_one(n: int) -> None:
                failures = dispatch(envelope_record(n), LambdaContext("dispatch", 60))["batchItemFailures"]
                if failures:
                    raise RuntimeError(f"dispatch failed: {failures}")

            # the subscription query: a cold cache, then the reads during one invocation
            # the first invocation has a cold subscription cache (the module was just loaded):
            # its reads of the subscriptions are counted; later rounds hit the cache, as a warm
            # instance does within CACHE_TTL_SECONDS
            store_of_dispatch = dispatcher.store
            counted = {
                name: CountingCollection(getattr(store_of_dispatch, name))
                for name in ("subscriptions", "partners", "endpoints")
            }
            for name, collection in counted.items():
                setattr(store_of_dispatch, name, collection)
            cold = timed(lambda: dispatch_one(0))
            queries = sum(c.reads for c in counted.values())
            sent = drain(client, queue, count)  # the warm-up's messages: the raw calls' input

            pool = ThreadPoolExecutor(max_workers=THREADS)
            ours: list[tuple[float, float]] = []
            raw: list[tuple[float, float]] = []
            for n in range(1, args.rounds + 1):
                ours.append(timed(lambda n=n: dispatch_one(n)))
                drain(client, queue, count)
                raw.append(timed(lambda: raw_send(client, queue, sent, pool)))
                drain(client, queue, count)

            # until all receivers have it: dispatch, then deliver invocations of 10 in parallel
            arrived_before = sum(len(r.delivered()) for r in receivers)
            started = time.perf_counter()
            dispatch_one(args.rounds + 1)
            delivered = 0
            lock = threading.Lock()

            def deliver_loop() -> None:
                nonlocal delivered
                while True:
                    with lock:
                        if delivered >= count:
                            return
                    messages = client.receive_message(
                        QueueUrl=queue,
                        MaxNumberOfMessages=10,
                        MessageSystemAttributeNames=["All"],
                        MessageAttributeNames=["All"],
                    ).get("Messages", [])
                    if not messages:
                        continue
                    failures = deliver(sqs_event(messages, queue), LambdaContext("deliver", 60))[
                        "batchItemFailures"
                    ]
                    done = {m["MessageId"] for m in messages} - {f["itemIdentifier"] for f in failures}
                    if done:  # what failed comes back after its visibility timeout, as on Lambda
                        client.delete_message_batch(
                            QueueUrl=queue,
                            Entries=[
                                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                for i, m in enumerate(messages)
                                if m["MessageId"] in done
                            ],
                        )
                    with lock:
                        delivered += len(done)

            with ThreadPoolExecutor(max_workers=4) as invocations:
                list(invocations.map(lambda _: deliver_loop(), range(4)))
            arrived = sum(len(r.delivered()) for r in receivers) - arrived_before
            all_received_ms = (time.perf_counter() - started) * 1000
            pool.shutdown()
    finally:
        for receiver in receivers:
            receiver.close()

    wall = statistics.median(w for w, _ in ours) / statistics.median(w for w, _ in raw)
    cpu = statistics.median(c for _, c in ours) / statistics.median(c for _, c in raw)
    print(f"fan-out of one event to {shape}; median of {args.rounds} rounds, same moto server:")
    print(
        f"  dispatch handler  wall {statistics.median(w for w, _ in ours):7.1f} ms  "
        f"CPU {statistics.median(c for _, c in ours):7.1f} ms"
    )
    print(
        f"  raw SendMessageBatch x{-(-count // 10)} over {THREADS} threads  wall "
        f"{statistics.median(w for w, _ in raw):7.1f} ms  CPU {statistics.median(c for _, c in raw):7.1f} ms"
    )
    print(
        f"  ratio: wall {wall:.2f}x, CPU {cpu:.2f}x (target {TARGET}x on wall: {'met' if wall <= TARGET else 'MISSED'})"
    )
    print(
        f"  dispatch with a cold subscription cache (first invocation): wall {cold[0]:.1f} ms, CPU {cold[1]:.1f} ms"
    )
    verdict = "yes" if queries == 1 else "NO"
    print(f"  partner store reads in one invocation, cold cache: {queries} (one query per batch: {verdict})")
    print(
        f"  all {count} receivers have the event {all_received_ms:.0f} ms after dispatch began "
        f"({arrived} POSTs to 4 local receivers standing in for {count} endpoints; deliver handler, "
        "4 concurrent invocations of 10)"
    )
    return 0 if wall <= TARGET and queries == 1 and arrived >= count else 1


if __name__ == "__main__":
    sys.exit(main())
