"""Failed-credential throttling per source address (in-process).

After ``limit`` failures from one source within ``window`` seconds, that source is refused
until its oldest failure leaves the window. Per process: on AWS each Lambda instance
counts on its own, so the template adds API Gateway throttling and an optional WAF
rate rule in front; locally one process serves everything and this is the whole guard.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from cachetools import LRUCache


class FailureThrottle:
    def __init__(
        self, limit: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: LRUCache[str, deque[float]] = LRUCache(10_000)  # bounded: sources are unbounded
        self._lock = threading.Lock()

    def blocked_for(self, source: str) -> float:
        """Seconds ``source`` must still wait (0: it may try)."""
        now = self._clock()
        with self._lock:
            failures = self._failures.get(source)
            if failures is None:
                return 0.0
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if len(failures) < self.limit:
                return 0.0
            return failures[0] + self.window - now

    def failed(self, source: str) -> None:
        with self._lock:
            failures = self._failures.get(source)
            if failures is None:
                failures = self._failures[source] = deque(maxlen=self.limit)
            failures.append(self._clock())
