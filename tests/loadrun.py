"""A bounded load run against a running `webhooks local` (loopback only; stops by itself).

Posts single-event requests at a steady rate for a fixed time, then waits for the system
to settle (every owed delivery either 2xx'd or dead-lettered) and checks the no-loss
invariant. Used by the short load test in `make test` and by bench/bench_load.py.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import requests
from pymongo import MongoClient

from webhooks.partners.store import PartnerStore
from webhooks_cli import dlq

from noloss import Ledger, Report
from support import CountingReceiver, sqs_client_for


@dataclass
class LoadResult:
    report: Report
    ledger: Ledger
    latencies_ms: list[float]  # first 2xx at a healthy partner - POST sent
    statuses: Counter[int]  # API answers
    attempts: int  # every POST the receivers saw
    failed_attempts: int
    seconds: float
    settle_seconds: float


def run_load(
    api_url: str,
    env: dict[str, str],
    producer_key: str,
    subscriptions: dict[str, list[str]],
    receivers: dict[str, CountingReceiver],
    rate: float,
    seconds: float,
    event_types: list[str],
    settle_timeout: float = 60.0,
    db_name: str = "recart_webhook_db",
) -> LoadResult:
    ledger = Ledger(subscriptions)
    sent_at: dict[str, float] = {}
    statuses: Counter[int] = Counter()
    session = requests.Session()
    rng = random.Random(7)
    started = time.time()
    n = 0
    while time.time() - started < seconds:
        time.sleep(max(0.0, started + n / rate - time.time()))
        event_type = rng.choice(event_types)
        t0 = time.time()
        response = session.post(
            f"{api_url}/api/v1/events",
            json=[{"eventType": event_type, "data": {"n": n}}],
            headers={"X-API-Key": producer_key},
            timeout=30,
        )
        statuses[response.status_code] += 1
        if response.status_code == 202:
            event_id = response.json()["results"][0]["eventId"]
            ledger.accept(event_id, event_type)
            sent_at[event_id] = t0
        n += 1
    posted = time.time()

    mongo: MongoClient[Any] = MongoClient(env["MONGO_URI"], tz_aware=True)
    names = {p.id: p.name for p in PartnerStore(mongo[db_name], cache_ttl=0).all()}
    mongo.close()
    sqs = sqs_client_for(env["AWS_ENDPOINT_URL"])

    def check() -> Report:
        dead = {
            (d["eventId"], names.get(d["partnerId"], "?"))
            for d in dlq.list_dead_letters(sqs, env["DELIVERY_DLQ_URL"]).letters
        }
        return ledger.check({name: r.delivered() for name, r in receivers.items()}, dead)

    deadline = time.time() + settle_timeout
    report = check()
    while report.lost and time.time() < deadline:
        time.sleep(0.5)
        report = check()
    settled = time.time()

    latencies: list[float] = []
    for receiver in receivers.values():
        for event_id, at in receiver.first_success().items():
            if event_id in sent_at:
                latencies.append((at - sent_at[event_id]) * 1000)
    attempts = sum(len(r.arrivals) for r in receivers.values())
    failed = sum(1 for r in receivers.values() for _, _, s in r.arrivals if not 200 <= s < 300)
    return LoadResult(
        report, ledger, latencies, statuses, attempts, failed, posted - started, settled - posted
    )


def run_standard_load(
    receivers: dict[str, CountingReceiver],
    env: dict[str, str],
    rate: float,
    seconds: float,
    settle_timeout: float,
    capture_logs: bool = True,
) -> LoadResult:
    """The load run of the test and the benchmark: the partners of bench_partners, the first
    one posting, through a `webhooks local` of its own that is stopped afterwards."""
    from bench_partners import LOAD_EVENT_TYPES, LOAD_SUBSCRIPTIONS, load_partners
    from runtime_process import RuntimeProcess

    partners = load_partners({name: r.url for name, r in receivers.items()})
    runtime = RuntimeProcess(partners, {"POWERTOOLS_LOG_LEVEL": "WARNING", **env}, capture=capture_logs)
    try:
        return run_load(
            runtime.url,
            runtime.endpoints,
            partners[0]["apiKey"],
            LOAD_SUBSCRIPTIONS,
            receivers,
            rate=rate,
            seconds=seconds,
            event_types=LOAD_EVENT_TYPES,
            settle_timeout=settle_timeout,
        )
    finally:
        runtime.stop()
