"""The long load run: N events/s for T seconds through `webhooks local`, one partner failing.

Reports accepted, delivered, retried, dead-lettered, lost (must be 0), duplicates and
end-to-end latency. Loopback only; stops by itself.

Run: .venv/bin/python bench/bench_load.py [--rate 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1] / "tests")]
from bench_partners import LOAD_SUBSCRIPTIONS  # noqa: E402
from common import CountingReceiver, summary  # noqa: E402
from loadrun import run_standard_load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--retry-delay", default="1000")
    args = parser.parse_args()
    receivers = {
        name: CountingReceiver(status=500 if name == "failing" else 200) for name in LOAD_SUBSCRIPTIONS
    }
    env = {"WEBHOOK_RETRY_DELAY": args.retry_delay, "WEBHOOK_MAX_ATTEMPTS": "3"}
    try:
        result = run_standard_load(
            receivers, env, rate=args.rate, seconds=args.seconds, settle_timeout=120, capture_logs=False
        )
    finally:
        for receiver in receivers.values():
            receiver.close()
    r = result.report
    print(f"[load {args.rate:g} events/s x {args.seconds:g} s, 4 subscribed partners, 1 always failing]")
    print(f"    API answers: {dict(result.statuses)} ({r.accepted / result.seconds:.1f} events/s achieved)")
    print(f"    {r}")
    print(
        f"    attempts seen by receivers {result.attempts}, failed attempts (retried or dead-lettered) "
        f"{result.failed_attempts}; settled {result.settle_seconds:.1f} s after the last POST"
    )
    print(f"    end-to-end latency to healthy partners: {summary(result.latencies_ms)}")
    print(f"    invariant: {'HOLDS' if r.ok and r.duplicates == 0 else 'BROKEN'}")
    sys.exit(0 if r.ok else 1)


if __name__ == "__main__":
    main()
