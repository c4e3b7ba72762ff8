"""SecantusDB, the local MongoDB-protocol server, with two per-write costs removed:
``python -m webhooks_cli.secantus_server`` takes ``secantusd``'s own arguments.

SecantusDB rebuilds a map of the collection's index options from its catalog (a scan of
the index table, decoding each entry) once per document it inserts, in three places per
document. During the throughput case that was 27% of the server's CPU
(bench/harness.py --profile). Within one insert chunk the map cannot change: SecantusDB
builds and drops indexes under the same per-collection lock the chunk holds. So the map
is read once per chunk here, per thread, and never kept past it.

It also prunes its retryable-write records (kept 30 minutes, at most 10,000: what lets a
driver's retry get the first reply instead of writing twice) by scanning all of them on
every retryable write, twice: 11% of the server's CPU under the deliver handler's writes,
and a scan of 10,000 entries per write once a runtime has run for a while. Here that prune
runs at most once a second: a record outlives its 30 minutes by under a second, and the
cap is exceeded by at most a second's writes.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from secantus import storage, transactions
from secantus.cli import main

_chunk = threading.local()
_index_options_map = storage.Storage._index_options_map
_insert_chunk = storage.Storage._insert_chunk


def _index_options_once_per_chunk(self: storage.Storage, db: str, coll: str) -> dict[str, dict[str, Any]]:
    cache: dict[tuple[str, str], dict[str, dict[str, Any]]] | None = getattr(_chunk, "cache", None)
    if cache is None:
        found: dict[str, dict[str, Any]] = _index_options_map(self, db, coll)
        return found
    if (db, coll) not in cache:
        cache[(db, coll)] = _index_options_map(self, db, coll)
    return cache[(db, coll)]


def _insert_chunk_with_cache(self: storage.Storage, *args: Any, **kwargs: Any) -> Any:
    _chunk.cache = {}
    try:
        return _insert_chunk(self, *args, **kwargs)
    finally:
        _chunk.cache = None


_prune_retryable = transactions.TransactionRegistry._prune_retryable_locked
PRUNE_INTERVAL_SECONDS = 1.0


def _prune_retryable_at_most_once_a_second(self: transactions.TransactionRegistry) -> None:
    # called with the registry's lock held, so the attribute needs no lock of its own
    now = self._time()
    if now - getattr(self, "_pruned_at", float("-inf")) >= PRUNE_INTERVAL_SECONDS:
        self._pruned_at = now
        _prune_retryable(self)


storage.Storage._index_options_map = _index_options_once_per_chunk  # type: ignore[method-assign]
storage.Storage._insert_chunk = _insert_chunk_with_cache  # type: ignore[method-assign]
transactions.TransactionRegistry._prune_retryable_locked = _prune_retryable_at_most_once_a_second  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
