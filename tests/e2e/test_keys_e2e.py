"""Keys through `webhooks local` with three API worker processes: failed admin keys counted
once across the workers, the operator still let in, a rotated API key refused everywhere."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from runtime_process import RuntimeProcess
from support import Receiver, partner_spec

pytestmark = pytest.mark.e2e
ADMIN_KEY = f"admin-{os.urandom(8).hex()}"
ADMIN = {"X-Admin-Key": ADMIN_KEY}
EVENT = [{"eventType": "order.created", "data": {}}]


@pytest.fixture(scope="module")
def producer() -> Iterator[dict[str, Any]]:
    receiver = Receiver()
    yield partner_spec("keys", receiver.url, ["order.*"])
    receiver.close()


@pytest.fixture(scope="module")
def runtime(producer: dict[str, Any]) -> Iterator[RuntimeProcess]:
    env = {
        "ADMIN_API_KEY": ADMIN_KEY,
        "ADMIN_AUTH_MAX_FAILURES": "10",
        "PARTNER_AUTH_MAX_FAILURES": "1000",  # the rotation test below fails on purpose
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    process = RuntimeProcess([producer], env=env, api_workers=3)
    yield process
    process.stop()


def test_failed_admin_keys_on_three_api_workers_share_one_count_and_the_operator_gets_in(
    runtime: RuntimeProcess,
) -> None:
    def wrong(n: int) -> int:
        return runtime.request("GET", "/api/v1/admin/partners", headers={"X-Admin-Key": f"guess-{n}"})[0]

    # three at a time, each on a connection of its own: the workers answer them side by side
    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(wrong, range(24)))
    assert sorted(statuses) == [401] * 10 + [429] * 14  # one budget of 10, not 10 per worker
    with ThreadPoolExecutor(3) as pool:  # the right key, from the throttled address, on every worker
        assert set(
            pool.map(lambda _: runtime.request("GET", "/api/v1/admin/partners", headers=ADMIN)[0], range(6))
        ) == {200}


def test_a_rotated_api_key_is_refused_on_every_worker_and_the_new_one_publishes(
    runtime: RuntimeProcess, producer: dict[str, Any]
) -> None:
    old = producer["apiKey"]
    with ThreadPoolExecutor(3) as pool:  # every worker has the old key cached
        assert set(pool.map(lambda _: runtime.post(EVENT, old)[0], range(6))) == {202}
    status, partners = runtime.request("GET", "/api/v1/admin/partners", headers=ADMIN)
    [partner] = partners["partners"]
    status, rotated = runtime.request(
        "POST", f"/api/v1/admin/partners/{partner['partnerId']}/rotate-api-key", headers=ADMIN
    )
    assert status == 200 and rotated["apiKey"] != old
    # within the revision bound (about a second) the old key is refused by all three workers
    deadline = time.monotonic() + 10
    while True:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: runtime.post(EVENT, old)[0], range(9)))
        if set(answers) == {401} or time.monotonic() > deadline:
            break
    assert set(answers) == {401}
    with ThreadPoolExecutor(3) as pool:
        assert set(pool.map(lambda _: runtime.post(EVENT, rotated["apiKey"])[0], range(6))) == {202}
