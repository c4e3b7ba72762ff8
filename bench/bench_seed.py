"""The seed's own throughput case, run against `webhooks local` with its defaults.

1,000 `order.created` events posted in batches of 100 (one client, one request after the
other), two active partners subscribed and one inactive: 2,000 webhooks. Reports the time
from the first post to the last webhook, webhook end-to-end latency (arrival - the post
that carried it), duplicates, signature checks, and the CPU seconds each process of the
stack spent (the runtime, its SQS emulator, its MongoDB-protocol server) per delivery.

The Node service's figure for the same shape, 90.3 s (its hard-coded limiter), was
measured elsewhere on this kind of machine (issue "Performance", side by side); it is
quoted, not re-measured here.

Run: .venv/bin/python bench/bench_seed.py [--events 1000] [--batch 100]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from common import RuntimeProcess, partner, pct
from support import Receiver

NODE_SECONDS = 90.3  # measured elsewhere, same shape (see the module docstring)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and, recursively, its children (Linux /proc)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (OSError, IndexError, ValueError):
        pass
    return total


def by_process(pid: int) -> dict[str, float]:
    found = {"runtime": cpu_seconds(pid) - sum(cpu_seconds(int(c)) for c in _children(pid))}
    for child in _children(pid):
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        name = (
            "sqs emulator"
            if "sqs_server" in cmdline
            else "mongodb server"
            if "secantus" in cmdline
            else cmdline[:30]
        )
        found[name] = found.get(name, 0.0) + cpu_seconds(int(child))
    return found


def _children(pid: int) -> list[str]:
    out: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += (task / "children").read_text().split()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    receivers = {name: Receiver() for name in ("first", "second", "inactive")}
    specs = [partner(name, r.url, ["order.*"], active=name != "inactive") for name, r in receivers.items()]
    runtime = RuntimeProcess(specs, {"POWERTOOLS_LOG_LEVEL": "WARNING"}, capture=False)
    try:
        producer = specs[0]["apiKey"]
        session = requests.Session()
        posted_at: dict[str, float] = {}
        cpu_before = by_process(runtime.process.pid)
        started = time.time()
        for start in range(0, args.events, args.batch):
            batch = [
                {"eventType": "order.created", "data": {"n": n}} for n in range(start, start + args.batch)
            ]
            sent = time.time()
            reply = session.post(
                f"{runtime.url}/api/v1/events", json=batch, headers={"X-API-Key": producer}, timeout=30
            )
            assert reply.status_code == 202, reply.text
            for result in reply.json()["results"]:
                posted_at[result["eventId"]] = sent
        expected = 2 * args.events
        deadline = time.time() + 300
        while sum(len(r.requests) for r in receivers.values()) < expected and time.time() < deadline:
            time.sleep(0.05)
        done = max(r.at for name in ("first", "second") for r in receivers[name].requests)
        time.sleep(1.0)  # anything extra (a duplicate) would have arrived by now
        cpu_after = by_process(runtime.process.pid)

        elapsed = done - started
        latencies, duplicates, bad_signatures = [], 0, 0
        for spec in specs[:2]:
            got = receivers[spec["name"]].requests
            counts = Counter(r.headers["webhook-id"] for r in got)
            duplicates += sum(c - 1 for c in counts.values())
            for r in got:
                latencies.append((r.at - posted_at[r.headers["webhook-id"]]) * 1000)
                try:
                    Webhook(spec["secretKey"]).verify(r.body, r.headers)
                except Exception:  # noqa: BLE001 - counted, reported
                    bad_signatures += 1
        delivered = sum(len(receivers[s["name"]].requests) for s in specs[:2])
        cpu = {k: cpu_after.get(k, 0.0) - cpu_before.get(k, 0.0) for k in cpu_after}
        print(
            f"[seed throughput] {args.events} events in batches of {args.batch}, 2 partners + 1 inactive: "
            f"{delivered}/{expected} webhooks in {elapsed:.1f} s ({delivered / elapsed:.0f}/s); "
            f"inactive got {len(receivers['inactive'].requests)}"
        )
        print(
            f"    webhook e2e p50 {pct(latencies, 50) / 1000:.2f} s, p99 {pct(latencies, 99) / 1000:.2f} s; "
            f"duplicates {duplicates}; signatures failing {bad_signatures}"
        )
        print(f"    vs the Node service, 90.3 s (measured elsewhere): {NODE_SECONDS / elapsed:.1f}x faster")
        total_cpu = sum(cpu.values())
        print(
            "    CPU seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(cpu.items()))
            + f"; total {total_cpu:.1f} = {total_cpu / max(delivered, 1) * 1000:.2f} ms per delivery"
        )
        summary: dict[str, Any] = {"seconds": elapsed, "duplicates": duplicates, "bad": bad_signatures}
        assert delivered == expected and duplicates == 0 and bad_signatures == 0, summary
    finally:
        runtime.stop()
        for r in receivers.values():
            r.close()


if __name__ == "__main__":
    main()
