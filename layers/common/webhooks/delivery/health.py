"""Endpoint health: failure streaks and automatic disabling (the deliveries parked meanwhile:
:mod:`webhooks.delivery.parked`).

Each partner document carries its failure streak (``consecutiveFailures`` and
``failingSince``). A deliver invocation records the outcome of every attempt and writes
the streaks once at its end, as it writes the delivery log: a healthy partner costs no
write at all, a failing one one update per invocation. When a streak is at least
ENDPOINT_DISABLE_AFTER_FAILURES attempts long *and* has lasted
ENDPOINT_DISABLE_AFTER_SECONDS (Svix's rule: every attempt failing for 5 days), the
endpoint is disabled, once, by whichever deliverer gets there first.

Deliveries for a disabled endpoint are parked in ``parkedDeliveries`` (kept, not
dropped); re-enabling the endpoint sends them back to the delivery queue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pymongo
from pymongo.errors import PyMongoError

from ..observability import logger
from ..partners.model import Partner
from ..partners.store import PartnerStore

WRITE_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class DisablePolicy:
    failures: int  # 0: never disable
    seconds: float

    def reached(self, failures: int, failing_since: datetime, now: datetime) -> bool:
        return (
            self.failures > 0
            and failures >= self.failures
            and (now - failing_since).total_seconds() >= self.seconds
        )


@dataclass(frozen=True)
class Disabled:
    """An endpoint this invocation disabled."""

    partner_id: str
    name: str
    consecutive_failures: int
    failing_since: datetime
    disabled_at: datetime
    reason: str


@dataclass
class _Outcomes:
    partner: Partner
    results: list[tuple[bool, datetime, str | None]]


class EndpointHealth:
    def __init__(
        self,
        store: PartnerStore,
        policy: DisablePolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.policy = policy
        self._clock = clock
        # partners this process saw failing: a success resets them even while the cached
        # partner still shows the old, healthy streak
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    def record(self, partner: Partner, ok: bool, error: str | None, into: dict[str, Any]) -> None:
        """Note an attempt's outcome in ``into``: one invocation's own, shared by its threads."""
        with self._lock:
            pending = into.setdefault(partner.id, _Outcomes(partner, []))
            pending.results.append((ok, self._clock(), error))

    def flush(self, recorded: dict[str, Any]) -> list[Disabled]:
        """Write the streaks in ``recorded`` and empty it; never raises. Returns the endpoints
        it disabled."""
        with self._lock:
            pending = dict(recorded)
            recorded.clear()
        disabled = []
        for partner_id, outcomes in pending.items():
            try:
                with pymongo.timeout(WRITE_TIMEOUT_SECONDS):
                    done = self._write(partner_id, outcomes)
            except PyMongoError as exc:
                # the database is most likely away: do not wait out the others one by one
                logger.warning(
                    "endpoint health not written",
                    extra={"partners": len(pending), "error": type(exc).__name__},
                )
                break
            if done is not None:
                disabled.append(done)
        return disabled

    def _write(self, partner_id: str, outcomes: _Outcomes) -> Disabled | None:
        results = outcomes.results
        last_ok = max((i for i, (ok, _, _) in enumerate(results) if ok), default=None)
        failures = results if last_ok is None else results[last_ok + 1 :]
        if not failures:
            with self._lock:
                known_failing = partner_id in self._failing
                self._failing.discard(partner_id)
            if known_failing or outcomes.partner.consecutive_failures:
                self.store.reset_failures(partner_id)
            return None
        # after a success in this invocation the streak starts again at its first failure
        partner = self.store.add_failures(
            partner_id, len(failures), failures[0][1], restart=last_ok is not None
        )
        with self._lock:
            self._failing.add(partner_id)
        if partner is None or partner.endpoint_disabled or partner.failing_since is None:
            return None
        now = self._clock()
        if not self.policy.reached(partner.consecutive_failures, partner.failing_since, now):
            return None
        since = partner.failing_since.isoformat()
        last_error = results[-1][2] or "delivery failed"
        reason = (
            f"{partner.consecutive_failures} consecutive failed attempts since {since}; last: {last_error}"
        )
        if not self.store.disable_endpoint(partner_id, reason[:500]):
            return None  # another deliverer disabled it first
        return Disabled(
            partner_id, partner.name, partner.consecutive_failures, partner.failing_since, now, reason[:500]
        )
