"""The console's aggregate endpoint over 100,000 logged attempts (issue 16: under 200 ms).

A fresh `webhooks local`; 100,000 attempts of 5 partners spread over the last 24 hours are
written the way the deliver function writes them (DeliveryLog.flush: the attempts and the
per-minute/hour counters), then GET /api/v1/admin/stats?window=hour and ?window=day are
timed through the local API. Baseline, same run: the same question answered by grouping the
attempts themselves in MongoDB (what the counters replace), for the day.

Run: .venv/bin/python bench/bench_console.py [--attempts 100000]; exits 1 above 200 ms.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RuntimeProcess, partner, pct

TARGET_MS = 200.0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attempts", type=int, default=100_000)
    args = parser.parse_args()
    specs = [partner(f"p{n}", f"http://127.0.0.1:9/{n}", ["order.*"]) for n in range(5)]
    runtime = RuntimeProcess(specs, {"POWERTOOLS_LOG_LEVEL": "WARNING"}, capture=False)
    try:
        import os

        os.environ["MONGO_URI"] = runtime.endpoints["MONGO_URI"]
        from pymongo import MongoClient
        from pymongo.database import Database

        from webhooks.store.delivery_log import AttemptRecord, DeliveryLog

        db: Database[dict[str, Any]] = MongoClient(runtime.endpoints["MONGO_URI"], tz_aware=True)[
            runtime.endpoints.get("MONGO_DB_NAME", "recart_webhook_db")
        ]
        ids = [p["_id"] for p in db.partners.find({}, {"_id": 1})]
        log = DeliveryLog(db)
        log.ensure_indexes()
        rng = random.Random(7)
        now = datetime.now(UTC)
        started = time.perf_counter()
        outcomes = ["delivered"] * 8 + ["retry", "dead_lettered"]
        for chunk in range(0, args.attempts, 1000):
            docs = []
            for n in range(chunk, min(args.attempts, chunk + 1000)):
                outcome = rng.choice(outcomes)
                docs.append(
                    AttemptRecord(
                        f"event_{n:024x}", "order.created", str(rng.choice(ids)), 1, outcome,
                        200 if outcome == "delivered" else 500, rng.lognormvariate(3, 1), None, None, b"",
                        now - timedelta(seconds=rng.random() * 86_400),
                    ).document()
                )  # fmt: skip
            # what DeliveryLog.flush writes, without its per-invocation time limit (sized for 10)
            db.deliveryAttempts.insert_many(docs)
            db.deliveryStats.bulk_write(log.stats.updates(docs))
        logged = db.deliveryAttempts.count_documents({})
        counted = sum(
            d.get("delivered", 0) + d.get("failed", 0) + d.get("deadLettered", 0)
            for d in db.deliveryStats.find({"partnerId": {"$ne": "_events"}})
        )
        print(
            f"[setup] {logged:,} attempts logged, {counted:,} counted, in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        assert logged == counted == args.attempts, (logged, counted)

        key = (runtime.data_dir / "admin-key").read_text().strip()
        session = requests.Session()
        results = {}
        for window in ("hour", "day"):
            times = []
            for _ in range(20):
                t = time.perf_counter()
                reply = session.get(
                    f"{runtime.url}/api/v1/admin/stats",
                    params={"window": window},
                    headers={"X-Admin-Key": key},
                )
                times.append((time.perf_counter() - t) * 1000)
                assert reply.status_code == 200, reply.text
            body = reply.json()
            total = sum(p["delivered"] + p["failed"] + p["deadLettered"] for p in body["series"])
            results[window] = pct(times, 50)
            print(
                f"[stats, window={window}] p50 {pct(times, 50):.1f} ms, p99 {pct(times, 99):.1f} ms "
                f"over {total:,} attempts in the window ({len(body['series'])} buckets, 5 partners)"
            )

        t = time.perf_counter()
        grouped = list(
            db.deliveryAttempts.aggregate(
                [
                    {"$match": {"timestamp": {"$gte": now - timedelta(days=1)}}},
                    {"$group": {"_id": {"p": "$partnerId", "o": "$outcome"}, "n": {"$sum": 1}}},
                ]
            )
        )
        raw = (time.perf_counter() - t) * 1000
        print(
            f"[baseline] grouping the attempts themselves in MongoDB (day): {raw:.0f} ms for {len(grouped)} groups "
            f"-> the counters answer in {results['day'] / raw:.3f}x the time"
        )
        worst = max(results.values())
        if worst > TARGET_MS:
            print(f"TARGET MISSED: stats endpoint p50 {worst:.1f} ms (target < {TARGET_MS:.0f} ms)")
            return 1
        return 0
    finally:
        runtime.stop()


if __name__ == "__main__":
    sys.exit(main())
