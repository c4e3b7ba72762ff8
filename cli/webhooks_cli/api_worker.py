"""One of the processes serving the local API on the runtime's port (``--api-workers``).

Like a Lambda execution environment: its own import of the ingest function, one
request at a time, the port shared with SO_REUSEPORT. It reads its configuration from the
environment the runtime hands it and stops on SIGTERM (or when the runtime dies).
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
