"""The SQS emulator itself: `moto_server` vs our lean launch of the same moto SQS app.

Both measured in the same run with the same client load (4 threads, each doing
send -> receive -> delete on a shallow queue), so the ratio is what the launch changes.

With `.venv-localstack` present (`make test-localstack` creates it), LocalStack's SQS in
host mode takes the same load in the same run.

Run: .venv/bin/python bench/bench_sqs_server.py [--cycles 300]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from webhooks_cli.servers import LOOPBACK, _spawn, free_port, start_sqs

from support import sqs_client_for

BODY = (
    '{"version":1,"events":['
    + ",".join(
        [
            '{"eventId":"event_0123456789abcdef01234567","eventType":"order.created",'
            '"timestamp":"2026-11-28T20:56:50.123Z","data":{"orderId":"1234","total":99.9}}'
        ]
        * 10
    )
    + "]}"
)


def load(url: str, cycles: int, threads: int = 4) -> float:
    client = sqs_client_for(url)
    queue = client.create_queue(QueueName="bench")["QueueUrl"]

    def worker() -> None:
        for _ in range(cycles):
            client.send_message(QueueUrl=queue, MessageBody=BODY)
            for m in client.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", []):
                client.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return 3 * cycles * threads / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cycles", type=int, default=300)
    args = parser.parse_args()
    port = free_port()
    plain = _spawn(
        "moto_server",
        [
            shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server")),
            "-H",
            LOOPBACK,
            "-p",
            str(port),
        ],
        port,
        None,
        20,
    )
    lean = start_sqs()
    try:
        plain_rate = load(f"http://{LOOPBACK}:{port}", args.cycles)
        lean_rate = load(lean.url, args.cycles)
    finally:
        plain.stop()
        lean.stop()
    print(
        f"[SQS emulator, 4 threads send/receive/delete] moto_server {plain_rate:.0f} calls/s, "
        f"lean launch {lean_rate:.0f} calls/s -> ratio {lean_rate / plain_rate:.2f}x"
    )
    localstack_rate = localstack_load(args.cycles)
    if localstack_rate is not None:
        print(
            f"[same load] LocalStack (host mode) {localstack_rate:.0f} calls/s -> our launch is "
            f"{lean_rate / localstack_rate:.2f}x LocalStack"
        )


def localstack_load(cycles: int) -> float | None:
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "localstack"))
    import run as localstack  # tests/localstack/run.py

    if not localstack.LOCALSTACK_PYTHON.exists():
        print("(no .venv-localstack: LocalStack not measured)")
        return None
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="localstack-") as folder:
        process = localstack.start(Path(folder), port)
        try:
            localstack.wait_healthy(f"http://{LOOPBACK}:{port}", process)
            return load(f"http://{LOOPBACK}:{port}", cycles)
        finally:
            localstack.stop(process)


if __name__ == "__main__":
    main()
