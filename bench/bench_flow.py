"""Flow control through two `webhooks local` runtimes sharing one SQS emulator and database.

A backlog of events for one partner, first without a limit (the baseline: how fast the
pair drains it), then with a rate limit far below that: arrivals per second at the
receiver against the limit, and every event exactly once.
(The cost of a limit that is never reached is in bench_deliver.py.)

Run: .venv/bin/python bench/bench_flow.py [--limit 50] [--events 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CountingReceiver, RuntimeProcess, partner

ADMIN = {"X-Admin-Key": "bench-admin"}


def drain(
    runtimes: list[RuntimeProcess], receiver: CountingReceiver, api_key: str, events: int, timeout: float
) -> float:
    """Post ``events`` (batches of 10, alternating runtimes); seconds until all arrived."""
    receiver.arrivals.clear()
    started = time.time()
    for n in range(events // 10):
        batch = [{"eventType": "flow.tick", "data": {"n": n * 10 + i}} for i in range(10)]
        status, _ = runtimes[n % 2].post(batch, api_key)
        assert status == 202
    deadline = started + timeout
    while len(receiver.arrivals) < events and time.time() < deadline:
        time.sleep(0.05)
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    receiver = CountingReceiver()
    spec = partner("flow", receiver.url, ["flow.*"])
    env = {"POWERTOOLS_LOG_LEVEL": "WARNING", "ADMIN_API_KEY": ADMIN["X-Admin-Key"], "CACHE_TTL_SECONDS": "1"}
    first = RuntimeProcess([spec], env, capture=False)
    second = RuntimeProcess(env={**env, **first.endpoints}, capture=False)
    try:
        status, body = first.request("GET", "/api/v1/admin/partners", headers=ADMIN)
        [pid] = [p["partnerId"] for p in body["partners"] if p["name"] == "flow"]

        unlimited = drain([first, second], receiver, spec["apiKey"], args.events, timeout=60)
        print(
            f"[baseline, no limit] {args.events} events drained in {unlimited:.1f} s "
            f"({args.events / unlimited:.0f}/s) by two runtimes"
        )

        status, _ = first.request("PATCH", f"/api/v1/admin/partners/{pid}", {"rateLimit": args.limit}, ADMIN)
        assert status == 200
        time.sleep(1.2)  # both runtimes' partner caches (CACHE_TTL_SECONDS=1) see the limit
        limited = drain(
            [first, second], receiver, spec["apiKey"], args.events, timeout=args.events / args.limit * 3
        )
        time.sleep(1.5)
        ids = [e for e, _, _ in receiver.arrivals]
        per_second = Counter(int(at) for _, at, _ in receiver.arrivals)
        counts = [per_second.get(s, 0) for s in range(min(per_second), max(per_second) + 1)]
        middle = counts[1:-1]
        mean = sum(middle) / len(middle)
        spans = [sum(counts[i : i + 3]) / 3 for i in range(len(counts) - 2)]
        print(
            f"[rate limit {args.limit}/s] {len(ids)} arrivals ({len(set(ids))} unique) in {limited:.1f} s; "
            f"per second: {counts}"
        )
        print(
            f"    full seconds mean {mean:.1f}/s -> ratio {mean / args.limit:.2f}x the limit; busiest second "
            f"{max(counts)} ({max(counts) / args.limit:.2f}x); busiest 3 s {max(spans):.1f}/s "
            f"({max(spans) / args.limit:.2f}x); the pair drains {args.events / unlimited / args.limit:.1f}x "
            f"the limit without it"
        )
    finally:
        second.stop()
        first.stop()
        receiver.close()


if __name__ == "__main__":
    main()
