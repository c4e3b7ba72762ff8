"""End-to-end benchmarks through `webhooks local` (its own moto SQS + SecantusDB).

1. Latency, event POST to webhook receipt, at a steady 10 events/s (Node: p50 ~27 ms).
2. Throughput: 2,000 webhooks to one partner, posted as 200 requests of 10 (Node: ~91 s).
3. Isolation: while one partner always fails (retries, DLQ), a healthy partner's latency
   and duplicates (Node: p50 ~7.8 s, and the same event can arrive twice).
Next to each: the raw SQS send->receive round trip on the same emulator, same run.

Run: .venv/bin/python bench/bench_e2e.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CountingReceiver, RuntimeProcess, partner, pct, quiet_runtime, sqs_round_trips, summary


def steady(
    runtime: RuntimeProcess, api_key: str, rate: float, seconds: float, event_type: str
) -> dict[str, float]:
    session = requests.Session()
    sent: dict[str, float] = {}
    interval = 1 / rate
    start = time.time()
    n = 0
    while time.time() - start < seconds:
        target = start + n * interval
        time.sleep(max(0.0, target - time.time()))
        t0 = time.time()
        response = session.post(
            f"{runtime.url}/api/v1/events",
            json=[{"eventType": event_type, "data": {"n": n}}],
            headers={"X-API-Key": api_key},
            timeout=10,
        )
        assert response.status_code == 202, response.text
        sent[response.json()["results"][0]["eventId"]] = t0
        n += 1
    return sent


def latencies(
    receiver: CountingReceiver, sent: dict[str, float], wait: float = 5.0
) -> tuple[list[float], Counter[str]]:
    deadline = time.time() + wait
    while time.time() < deadline:
        with receiver.lock:
            got = {e for e, _, _ in receiver.arrivals}
        if set(sent) <= got:
            break
        time.sleep(0.05)
    with receiver.lock:
        arrivals = list(receiver.arrivals)
    counts = Counter(e for e, _, _ in arrivals if e in sent)
    first: dict[str, float] = {}
    for event_id, at, _ in arrivals:
        if event_id in sent and event_id not in first:
            first[event_id] = at
    return [(first[e] - sent[e]) * 1000 for e in sent if e in first], counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--webhooks", type=int, default=2000, help="a multiple of 10 (posts of 10 events)")
    args = parser.parse_args()
    if args.webhooks <= 0 or args.webhooks % 10:
        parser.error("--webhooks must be a positive multiple of 10")

    healthy, bulk, failing = CountingReceiver(), CountingReceiver(), CountingReceiver(status=500)
    partners = [
        partner("healthy", healthy.url, ["order.*"]),
        partner("bulk", bulk.url, ["bulk.*"]),
        partner("failing", failing.url, ["order.*"]),
    ]
    producer = partners[0]["apiKey"]
    runtime = quiet_runtime(partners[:2], env={"WEBHOOK_RETRY_DELAY": "1000"})
    try:
        raw = sqs_round_trips(runtime.endpoints["AWS_ENDPOINT_URL"], 200)
        print(f"[emulator] raw SQS send + receive round trip: {summary(raw)}")

        # 1. latency at 10 events/s, healthy partner only
        sent = steady(runtime, producer, 10, args.seconds, "order.created")
        lat, counts = latencies(healthy, sent)
        print(
            f"[latency @10 events/s, {len(sent)} events] {summary(lat)}; delivered {len(lat)}/{len(sent)}, "
            f"duplicates {sum(c - 1 for c in counts.values())}"
        )
        print(
            f"    vs Node p50 ~27 ms: {pct(lat, 50) / 27:.2f}x; our p50 is {pct(lat, 50) / pct(raw, 50):.1f}x one raw "
            f"SQS round trip (the pipeline makes two queue hops)"
        )

        # 2. throughput: 2,000 webhooks
        session = requests.Session()
        body = [{"eventType": "bulk.created", "data": {"n": i}} for i in range(10)]
        started = time.time()
        lock = threading.Lock()

        def post(k: int) -> None:
            s = requests.Session()
            for _ in range(k):
                r = s.post(
                    f"{runtime.url}/api/v1/events", json=body, headers={"X-API-Key": producer}, timeout=30
                )
                assert r.status_code == 202

        requests_total = args.webhooks // 10  # 4 clients share them, the first ones one more
        shares = [requests_total // 4 + (1 if n < requests_total % 4 else 0) for n in range(4)]
        threads = [threading.Thread(target=post, args=(share,)) for share in shares]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        posted = time.time()
        deadline = time.time() + 120
        while len(bulk.arrivals) < args.webhooks and time.time() < deadline:
            time.sleep(0.05)
        done = time.time()
        with lock:
            unique = len({e for e, _, _ in bulk.arrivals})
        print(
            f"[throughput] {len(bulk.arrivals)} webhooks ({unique} unique) in {done - started:.1f} s "
            f"({len(bulk.arrivals) / (done - started):.0f}/s; posting took {posted - started:.1f} s) "
            f"vs Node ~91 s -> {91 / (done - started):.1f}x faster"
        )
        del session

        # 3. isolation: add a partner that always fails, same event types as the healthy one
        from pymongo import MongoClient

        from webhooks.partners.cache import REVISION_CHECK_SECONDS
        from webhooks.partners.store import PartnerStore

        mongo: MongoClient[dict[str, Any]] = MongoClient(runtime.endpoints["MONGO_URI"], tz_aware=True)
        store = PartnerStore(mongo["recart_webhook_db"], cache_ttl=0)
        failing_spec = partners[2]
        store.upsert_by_name(
            failing_spec["name"],
            failing_spec["webhookUrl"],
            failing_spec["events"],
            api_key=failing_spec["apiKey"],
            secret_key=failing_spec["secretKey"],
        )
        # the partner revision makes every process drop its caches within a second
        time.sleep(REVISION_CHECK_SECONDS + 0.5)
        healthy.arrivals.clear()
        sent = steady(runtime, producer, 10, args.seconds, "order.updated")
        lat, counts = latencies(healthy, sent)
        time.sleep(4)  # the failing partner's retries (1 s, 2 s) play out
        with failing.lock:
            failing_attempts = Counter(e for e, _, _ in failing.arrivals if e in sent)
        print(
            f"[isolation, one partner failing] healthy: {summary(lat)}; delivered {len(lat)}/{len(sent)}, "
            f"duplicates {sum(c - 1 for c in counts.values())}; failing partner got "
            f"{sum(failing_attempts.values())} attempts for {len(failing_attempts)} events"
        )
        print(f"    vs Node p50 ~7.8 s with duplicates: {7800 / pct(lat, 50):.0f}x lower p50")
        mongo.close()
    finally:
        runtime.stop()
        for r in (healthy, bulk, failing):
            r.close()


if __name__ == "__main__":
    main()
