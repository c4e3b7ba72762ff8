"""Endpoint health: failure streaks, the warning half way, and automatic disabling (the
deliveries parked meanwhile: :mod:`webhooks.delivery.parked`).

Each endpoint carries its own failure streak (``consecutiveFailures`` and ``failingSince``,
in the partner document for its first endpoint, in its own document for the others). A
deliver invocation records the outcome of every attempt and writes the streaks once at its
end, as it writes the delivery log: a healthy endpoint costs no write at all, a failing one
one update per invocation. When a streak reaches half of ENDPOINT_DISABLE_AFTER_FAILURES
(rounded up) the partner is warned (``endpoint.failing``), once per streak: the one write
that takes the streak across that count reports it. When a streak is at least
ENDPOINT_DISABLE_AFTER_FAILURES attempts long *and* has lasted ENDPOINT_DISABLE_AFTER_SECONDS
(Svix's rule: every attempt failing for 5 days), the endpoint is disabled, once, by whichever
deliverer gets there first. One endpoint's failures never touch another endpoint of the
same partner.

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

from ..endpoints.model import Endpoint
from ..endpoints.store import EndpointStore
from ..observability import logger

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

    @property
    def warn_at(self) -> int:
        """The streak length at which the partner is told its endpoint is failing: half the
        disabling count, rounded up (0: never, as the endpoint is never disabled)."""
        return -(-self.failures // 2)


@dataclass(frozen=True)
class Disabled:
    """An endpoint this invocation disabled."""

    partner_id: str
    name: str
    consecutive_failures: int
    failing_since: datetime
    disabled_at: datetime
    reason: str
    endpoint_id: str | None = None  # None: the partner's first endpoint


@dataclass(frozen=True)
class Failing:
    """An endpoint whose failure streak this invocation took to the warning count."""

    partner_id: str
    endpoint_id: str
    consecutive_failures: int
    failing_since: datetime
    last_error: str


@dataclass
class _Outcomes:
    endpoint: Endpoint
    results: list[tuple[bool, datetime, str | None]]


class EndpointHealth:
    def __init__(
        self,
        endpoints: EndpointStore,
        policy: DisablePolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.endpoints = endpoints
        self.policy = policy
        self._clock = clock
        # endpoints this process saw failing (by id: unique across partners): a success
        # resets them even while the cached endpoint still shows the old, healthy streak
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    def record(self, endpoint: Endpoint, ok: bool, error: str | None, into: dict[str, Any]) -> None:
        """Note an attempt's outcome in ``into``: one invocation's own, shared by its threads."""
        with self._lock:
            pending = into.setdefault(endpoint.id, _Outcomes(endpoint, []))
            pending.results.append((ok, self._clock(), error))

    def flush(self, recorded: dict[str, Any]) -> list[Disabled | Failing]:
        """Write the streaks in ``recorded`` and empty it; never raises. Returns what the
        partners are to be told: endpoints that reached the warning count, endpoints disabled."""
        with self._lock:
            pending = dict(recorded)
            recorded.clear()
        notices: list[Disabled | Failing] = []
        for outcomes in pending.values():
            try:
                with pymongo.timeout(WRITE_TIMEOUT_SECONDS):
                    notices += self._write(outcomes)
            except PyMongoError as exc:
                # the database is most likely away: do not wait out the others one by one
                logger.warning(
                    "endpoint health not written",
                    extra={"endpoints": len(pending), "error": type(exc).__name__},
                )
                break
        return notices

    def _write(self, outcomes: _Outcomes) -> list[Disabled | Failing]:
        endpoint, results = outcomes.endpoint, outcomes.results
        last_ok = max((i for i, (ok, _, _) in enumerate(results) if ok), default=None)
        failures = results if last_ok is None else results[last_ok + 1 :]
        if not failures:
            with self._lock:
                known_failing = endpoint.id in self._failing
                self._failing.discard(endpoint.id)
            if known_failing or endpoint.consecutive_failures:
                self.endpoints.reset_failures(endpoint)
            return []
        # after a success in this invocation the streak starts again at its first failure
        restart = last_ok is not None
        now_ep = self.endpoints.add_failures(endpoint, len(failures), failures[0][1], restart=restart)
        with self._lock:
            self._failing.add(endpoint.id)
        if now_ep is None or now_ep.endpoint_disabled or now_ep.failing_since is None:
            return []
        streak, since = now_ep.consecutive_failures, now_ep.failing_since
        last_error = results[-1][2] or "delivery failed"
        notices: list[Disabled | Failing] = []
        # the streak before this write: $inc is atomic, so exactly one writer crosses the count
        before = 0 if restart else streak - len(failures)
        warn_at = self.policy.warn_at
        if warn_at and before < warn_at <= streak:
            notices.append(Failing(endpoint.partner_id, endpoint.id, streak, since, last_error[:500]))
        now = self._clock()
        if not self.policy.reached(streak, since, now):
            return notices
        reason = f"{streak} consecutive failed attempts since {since.isoformat()}; last: {last_error}"
        if self.endpoints.disable(now_ep, reason[:500]):  # False: another deliverer did it first
            notices.append(
                Disabled(endpoint.partner_id, endpoint.name, streak, since, now, reason[:500], endpoint.id)
            )
        return notices
