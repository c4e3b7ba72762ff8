"""Ingest benchmarks.

1. The ingest handler on a 100-event batch vs the same SendMessage made raw with boto3,
   same SQS endpoint, same run: what our API layer costs on top of the queue call.
2. Events/s through `webhooks local` with 4 concurrent clients posting batches of 10
   (the Node service: ~1,500 events/s, p50 ~24 ms), next to the raw SendMessage/s the same
   SQS emulator sustains with 4 threads in the same run.

Run: .venv/bin/python bench/bench_ingest.py [--requests 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from webhooks_cli.lambdas import LambdaContext, load_handler

from common import CountingReceiver, handler_servers, partner, pct, quiet_runtime, summary
from support import sqs_client_for


def handler_vs_raw(rounds: int) -> dict[str, float]:
    with handler_servers() as (client, urls):
        handler = load_handler("ingest")
        from webhooks.config import load_settings
        from webhooks.mongo import get_database
        from webhooks.partners import PartnerStore

        store = PartnerStore(get_database(load_settings()))
        store.ensure_indexes()
        api_key = store.create("bench", "https://bench.example/h", []).api_key
        body = json.dumps(
            [
                {"eventType": "order.created", "data": {"orderId": str(i), "total": 12.5, "sku": "ABC-123"}}
                for i in range(100)
            ]
        )
        event = {
            "httpMethod": "POST",
            "path": "/api/v1/events",
            "headers": {"X-API-Key": api_key},
            "multiValueHeaders": {"X-API-Key": [api_key]},
            "body": body,
            "isBase64Encoded": False,
            "requestContext": {"requestId": "bench", "stage": "v1", "path": "/v1/api/v1/events"},
            "resource": "/api/v1/events",
            "queryStringParameters": None,
        }
        context = LambdaContext("ingest", 29)
        assert handler(event, context)["statusCode"] == 202  # warm: cold start, caches
        envelope = client.receive_message(QueueUrl=urls["EVENTS_QUEUE_URL"])["Messages"][0]["Body"]

        ours, raw = [], []
        for _ in range(rounds):  # interleaved, so both see the same queue depth and machine state
            t = time.perf_counter()
            assert handler(event, context)["statusCode"] == 202
            ours.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            client.send_message(QueueUrl=urls["EVENTS_QUEUE_URL"], MessageBody=envelope)
            raw.append((time.perf_counter() - t) * 1000)
            # keep the queue shallow (moto scans it on some calls), outside the timed parts
            taken = client.receive_message(QueueUrl=urls["EVENTS_QUEUE_URL"], MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if taken:
                client.delete_message_batch(
                    QueueUrl=urls["EVENTS_QUEUE_URL"],
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(taken)
                    ],
                )
        return {
            "handler_p50": pct(ours, 50),
            "raw_p50": pct(raw, 50),
            "handler_p99": pct(ours, 99),
            "raw_p99": pct(raw, 99),
        }


def post_load(
    url: str, api_key: str, clients: int, requests_per_client: int, batch: int
) -> tuple[float, list[float]]:
    body = json.dumps(
        [{"eventType": "order.created", "data": {"orderId": str(i), "total": 12.5}} for i in range(batch)]
    )
    latencies: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        session = requests.Session()
        for _ in range(requests_per_client):
            t = time.perf_counter()
            response = session.post(
                f"{url}/api/v1/events",
                data=body,
                headers={"X-API-Key": api_key, "Content-Type": "application/json"},
                timeout=30,
            )
            elapsed = (time.perf_counter() - t) * 1000
            assert response.status_code == 202, response.text
            with lock:
                latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


def raw_sqs_rate(endpoint: str, queue_url: str, clients: int, calls: int, body: str) -> float:
    def worker() -> None:
        client = sqs_client_for(endpoint)
        for _ in range(calls):
            client.send_message(QueueUrl=queue_url, MessageBody=body)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clients * calls / (time.perf_counter() - started)


def local_api(requests_total: int) -> dict[str, float]:
    receiver = CountingReceiver()
    # subscribed to nothing that is posted: measures accepting and enqueuing (dispatch still
    # consumes every envelope from the same SQS emulator while the clients post)
    producer = partner("producer", receiver.url, ["unrelated.event"])
    runtime = quiet_runtime([producer])
    try:
        post_load(runtime.url, producer["apiKey"], 4, 25, 10)  # warm-up
        wall, latencies = post_load(runtime.url, producer["apiKey"], 4, requests_total // 4, 10)
        env = runtime.endpoints
        client = sqs_client_for(env["AWS_ENDPOINT_URL"])
        scratch = client.create_queue(QueueName="bench-raw")["QueueUrl"]
        body = json.dumps(
            {
                "version": 1,
                "events": [
                    {
                        "eventId": "event_" + "0" * 24,
                        "eventType": "order.created",
                        "timestamp": "2026-01-01T00:00:00.000Z",
                        "data": {"orderId": str(i), "total": 12.5},
                    }
                    for i in range(10)
                ],
            }
        )
        raw_rate = raw_sqs_rate(env["AWS_ENDPOINT_URL"], scratch, 4, requests_total // 8, body)
        return {
            "events_per_s": len(latencies) * 10 / wall,
            "requests_per_s": len(latencies) / wall,
            "p50": pct(latencies, 50),
            "p99": pct(latencies, 99),
            "raw_sends_per_s": raw_rate,
            "summary": summary(latencies),
        }  # type: ignore[dict-item]
    finally:
        runtime.stop()
        receiver.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()

    h = handler_vs_raw(args.rounds)
    print(
        f"[ingest handler, 100-event batch] handler p50 {h['handler_p50']:.2f} ms vs raw SendMessage p50 "
        f"{h['raw_p50']:.2f} ms -> ratio {h['handler_p50'] / h['raw_p50']:.2f}x "
        f"(p99 {h['handler_p99']:.2f} vs {h['raw_p99']:.2f} ms)"
    )
    r = local_api(args.requests)
    print(
        f"[local API, 4 clients x batches of 10] {r['events_per_s']:.0f} events/s ({r['requests_per_s']:.0f} req/s), "
        f"{r['summary']}"
    )
    print(
        f"    raw SendMessage on the same emulator, 4 threads: {r['raw_sends_per_s']:.0f}/s -> our requests/s "
        f"are {r['requests_per_s'] / r['raw_sends_per_s']:.2f}x the emulator's bare send rate"
    )
    print(
        f"    vs the Node service (~1,500 events/s, p50 ~24 ms): {r['events_per_s'] / 1500:.2f}x throughput, "
        f"p50 {r['p50']:.1f} ms"
    )


if __name__ == "__main__":
    main()
