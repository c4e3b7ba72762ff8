"""Shared bench helpers: percentiles, partner specs; the runtime and receivers come from tests/."""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


from runtime_process import RuntimeProcess  # noqa: E402
from support import CountingReceiver, partner_spec  # noqa: E402

partner = partner_spec

__all__ = [
    "CountingReceiver",
    "RuntimeProcess",
    "cpu_by_process",
    "cpu_spent_since",
    "handler_servers",
    "partner",
    "pct",
    "quiet_runtime",
    "sqs_round_trips",
    "summary",
]


@contextlib.contextmanager
def handler_servers() -> Iterator[tuple[Any, dict[str, str]]]:
    """moto SQS + SecantusDB for handlers run in this process: (SQS client, queue URLs),
    with the environment the handlers read set; both servers stopped after."""
    from webhooks_cli.servers import start_mongo, start_sqs
    from webhooks_cli.topology import create_queues

    from support import sqs_client_for

    sqs_server, mongo_server = start_sqs(), start_mongo()
    try:
        client = sqs_client_for(sqs_server.url)
        urls = create_queues(client)
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": sqs_server.url,
                "MONGO_URI": mongo_server.url,
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "AWS_ACCESS_KEY_ID": "x",
                "AWS_SECRET_ACCESS_KEY": "x",
                **urls,
            }
        )
        yield client, urls
    finally:
        sqs_server.stop()
        mongo_server.stop()


TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process and, recursively, its children (Linux /proc)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
        for child in _children(pid):
            total += _cpu_seconds(child)
    except (OSError, IndexError, ValueError):
        pass
    return total


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # a thread that ended since the listing (the API starts one per connection)
            continue
    return out


def cpu_by_process(pid: int) -> dict[str, float]:
    """CPU seconds so far of `webhooks local` (pid) and of each server it started."""
    children = _children(pid)
    found = {"runtime": _cpu_seconds(pid) - sum(_cpu_seconds(c) for c in children)}
    for child in children:
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        name = (
            "sqs emulator"
            if "sqs_server" in cmdline
            else "mongodb server"
            if "secantus" in cmdline
            else "api worker"
            if "api_worker" in cmdline
            else cmdline[:30]
        )
        found[name] = found.get(name, 0.0) + _cpu_seconds(child)
    return found


def cpu_spent_since(pid: int, before: dict[str, float]) -> dict[str, float]:
    """CPU seconds per process of `webhooks local` (pid) since ``before`` (``cpu_by_process``)."""
    after = cpu_by_process(pid)
    return {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}


def sqs_round_trips(endpoint: str, count: int = 100) -> list[float]:
    """Send one message and receive it back, `count` times, on a scratch queue (ms each)."""
    from support import sqs_client_for

    client = sqs_client_for(endpoint)
    queue = client.create_queue(QueueName=f"bench-round-trip-{int(time.time() * 1000)}")["QueueUrl"]
    body = json.dumps([{"eventType": "order.created", "data": {"n": 0}}])
    out = []
    for _ in range(count):
        started = time.perf_counter()
        client.send_message(QueueUrl=queue, MessageBody=body)
        got = client.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
        out.append((time.perf_counter() - started) * 1000)
        for message in got:
            client.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    client.delete_queue(QueueUrl=queue)
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):.1f} ms, p99 {pct(values, 99):.1f} ms, mean {statistics.fmean(values):.1f} ms"
    )


def quiet_runtime(partners: list[dict[str, Any]], env: dict[str, str] | None = None) -> RuntimeProcess:
    return RuntimeProcess(partners, {"POWERTOOLS_LOG_LEVEL": "WARNING", **(env or {})}, capture=False)
