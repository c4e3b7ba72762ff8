"""What revocation within 1 s costs: the partner revision check (one MongoDB read).

The ingest handler on a 10-event batch, three ways in one run, interleaved round by round:
- default: the revision is read at most once a second per process (what ships);
- every call: the revision read on every request (REVISION_CHECK_SECONDS = 0), the
  worst case, e.g. a Lambda instance invoked less than once a second;
- none: no check at all (revocation then waits for the cache's 30 s TTL, as before).
Prints p50 per way and the ratios, and the reads per request.

Run: .venv/bin/python bench/bench_revocation.py [--rounds 600]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhooks_cli.lambdas import LambdaContext, load_handler

from common import handler_servers
from support import api_event, drain


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=600)
    args = parser.parse_args()
    with handler_servers() as (client, urls):
        handler = load_handler("ingest")
        import webhooks.partners.cache as cache_module
        import webhooks.partners.store as partners_module
        from webhooks.config import load_settings
        from webhooks.store.mongo import get_database

        store = partners_module.PartnerStore(get_database(load_settings()))
        store.ensure_indexes()
        api_key = store.create("bench", "https://bench.example/h", []).api_key
        body = json.dumps([{"eventType": "order.created", "data": {"n": i}} for i in range(10)])
        event = api_event(body, api_key)
        context = LambdaContext("ingest", 29)
        assert handler(event, context)["statusCode"] == 202
        store_class = partners_module.PartnerStore
        real_sync = store_class.sync

        ways = ["default", "every call", "none"]
        times: dict[str, list[float]] = {w: [] for w in ways}
        for n in range(args.rounds):
            for way in ways:
                cache_module.REVISION_CHECK_SECONDS = 0.0 if way == "every call" else 1.0
                store_class.sync = real_sync if way != "none" else (lambda self: None)  # type: ignore[method-assign]
                t = time.perf_counter()
                assert handler(event, context)["statusCode"] == 202
                times[way].append((time.perf_counter() - t) * 1000)
            if n % 50 == 0:
                drain(client, urls["EVENTS_QUEUE_URL"])
        store_class.sync = real_sync  # type: ignore[method-assign]
        p50 = {w: statistics.median(v) for w, v in times.items()}
        print(f"ingest handler, 10-event batch, {args.rounds} rounds interleaved")
        for way in ways:
            print(f"  {way:>10}: p50 {p50[way]:.3f} ms")
        print(
            f"  default / none: {p50['default'] / p50['none']:.3f}x; every call / none: {p50['every call'] / p50['none']:.3f}x"
        )
        print("  reads: default at most 1 per second per process; every call: 1 per request")


if __name__ == "__main__":
    main()
