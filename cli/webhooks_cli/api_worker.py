"""One of the processes serving the local API on the runtime's port (``--api-workers``).

Like a Lambda execution environment: its own import of the ingest function, one
request at a time, the port shared with SO_REUSEPORT. It reads its configuration from the
environment the runtime hands it and stops on SIGTERM (or when the runtime dies).

Why not gunicorn (``--reuse-port``, its arbiter forking and replacing the workers), weighed
for issue 32: it would replace this module, ``servers.start_api_workers``, the runtime's
worker check and its port holder (about 110 lines), but not the signal code
(``stop_signals`` also stops SecantusDB) nor ``ApiServer``, which still serves
``--api-workers 1`` and the tests and holds the HTTP rules API Gateway applies (411, 413,
a bad Content-Length, 503 while stopping, the read timeout): a WSGI adapter would be a
second copy of them, and gunicorn one more dependency and process to supervise. Nor was it
faster: `bench/harness.py ingest`, today's workers and a gunicorn prototype (3 gthread
workers of one thread, keep-alive, the same ingest handler) run interleaved twice on the
shared two cores: today 1,898-2,008 events/s, p50 14.0-15.3 ms, the API's CPU 1.89-2.13 ms
per request; gunicorn 1,423-2,026 events/s, p50 13.7-20.9 ms, 2.32-2.46 ms per request.
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path

from .apigw import ApiServer
from .lambdas import load_handler
from .stop_signals import call_on_stop_signal


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    parser.add_argument("--ready-file", type=Path, help="created once the server listens")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    stop = threading.Event()
    call_on_stop_signal(stop.set)
    server = ApiServer(load_handler("ingest"), args.port, timeout_seconds=args.timeout, reuse_port=True)
    server.start()
    if args.ready_file:  # the runtime waits for it before it says it is up
        args.ready_file.touch()
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
