"""SecantusDB, the local MongoDB-protocol server, with a per-document cost removed and a
prompt stop that no burst of signals can hang: ``python -m webhooks_cli.secantus_server``
takes ``secantusd``'s own arguments.

SecantusDB rebuilds a map of the collection's index options from its catalog (a scan of
the index table, decoding each entry) once per document it inserts, in three places per
document. During the throughput case that was 27% of the server's CPU
(bench/harness.py --profile). Within one insert chunk the map cannot change: SecantusDB
builds and drops indexes under the same per-collection lock the chunk holds. So the map
is read once per chunk here, per thread, and never kept past it.

Its four patches replace SecantusDB 0.7.0b3 internals (``pins`` refuses any other
release); each says what it fixes and the test that proves it (tests named
test_x.py::... are in tests/integration/).
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from typing import Any

from .pins import require_pinned
from .stop_signals import call_on_stop_signal

# every patch below replaces a SecantusDB 0.7.0b3 internal: another release fails here
require_pinned("secantusdb", "MongoDB server")

from secantus import storage  # noqa: E402
from secantus.cli import main  # noqa: E402
from secantus.server import SecantusDBServer  # noqa: E402

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


# Fixes: speed (27% of the server's CPU in the throughput case). Proven by: bench/harness.py
# throughput --profile; indexes made or dropped between inserts still apply, unique,
# partial and sparse ones included:
#   test_mongo_server.py::test_a_unique_index_rejects_the_duplicate_inside_one_batch
#   test_mongo_server.py::test_an_index_made_between_inserts_applies_to_the_next_one
#   test_mongo_server.py::test_partial_and_sparse_options_are_honoured_per_document
storage.Storage._index_options_map = _index_options_once_per_chunk  # type: ignore[method-assign]
storage.Storage._insert_chunk = _insert_chunk_with_cache  # type: ignore[method-assign]

# SecantusDB stops by closing its listening socket and joining the accept thread for up to
# 2 s; on Linux a close does not wake a blocked accept(), so every stop took the full 2 s.
# A shutdown() of the socket does wake it (accept fails, the thread returns).
# Fixes: 2 s added to every stop of `webhooks local` and of the test fixtures.
# Proven by: test_mongo_server.py::test_a_stop_wakes_the_accept_thread_instead_of_waiting_it_out
_stop = SecantusDBServer.stop


def _stop_waking_accept(self: SecantusDBServer) -> None:
    listening = self._socket
    if listening is not None:
        with contextlib.suppress(OSError):
            listening.shutdown(socket.SHUT_RDWR)
    _stop(self)


SecantusDBServer.stop = _stop_waking_accept  # type: ignore[method-assign]

# SecantusDB's command line stops the server inside its SIGTERM handler. A second signal
# arriving meanwhile runs the handler again, nested in the first, and its stop waits for
# what the first one holds: two of four bursts of SIGTERMs left the server hanging. Once
# the server is up, the signals call the stop from a thread of their own instead, and the
# main thread's wait returns when that stop has finished (storage closed), not when it
# begins.
# Fixes: a server left running after a burst of SIGTERMs. Proven by (without the patch it
# failed 1 of 4 runs, a race with the signals' timing; with it, none):
#   test_stop_signals.py::test_the_local_servers_stop_after_a_burst_of_sigterms[secantusdb]
_start = SecantusDBServer.start


def _start_stopping_on_signals(self: SecantusDBServer) -> None:
    _start(self)
    stopping, stopped = threading.Event(), threading.Event()

    def stop() -> None:
        stopping.set()
        try:
            self.stop()
        finally:
            stopped.set()

    def wait() -> None:
        self._stop_event.wait()  # the server's own wait: a stop has begun, however it came
        if stopping.is_set():
            stopped.wait()

    call_on_stop_signal(stop)  # replaces the command line's handlers, registered before start
    self.wait = wait  # type: ignore[method-assign]


SecantusDBServer.start = _start_stopping_on_signals  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
