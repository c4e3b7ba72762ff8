"""The ``webhooks`` command: partners, the delivery log, replays, dead letters, the local runtime.

It talks to whatever MONGO_URI / AWS_ENDPOINT_URL / queue URLs point at; while
``webhooks local`` runs, it finds that runtime's endpoints in ``.local/state.json``.
The partner, catalog and delivery commands call the same service layer as the HTTP API.
"""

from __future__ import annotations

import argparse
import os
import sys


def _log_defaults(argv: list[str]) -> None:
    """Powertools reads these when the layer's logger is made, at its first import (below):
    a service name instead of ``service_undefined``, and for the one-shot commands only
    warnings (their INFO lines would follow the answer). ``webhooks local`` logs at INFO."""
    local = bool(argv) and argv[0] == "local"
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "webhooks" if local else "webhooks-cli")
    if not local:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")


if __name__ == "__main__" or os.path.basename(sys.argv[0]) == "webhooks":  # the command, not an import
    _log_defaults(sys.argv[1:])

from pymongo.errors import PyMongoError  # noqa: E402

from webhooks.config import ConfigError  # noqa: E402
from webhooks.errors import NotFound, ServiceError  # noqa: E402

from .commands import (  # noqa: E402
    CliError,
    dead_letters,
    deliveries,
    endpoints,
    event_types,
    local,
    migrate,
    partners,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webhooks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (local, partners, endpoints, deliveries, event_types, migrate, dead_letters):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        # the reader went away (`webhooks ... | head`): stop quietly, as other commands do; what
        # is left unflushed would raise again at exit, so stdout now goes nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a command a closed pipe ended


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe is found here, inside main, not at exit
        return code
    except (CliError, ConfigError) as exc:
        print(f"webhooks: {exc}", file=sys.stderr)
        return 2
    except NotFound as exc:
        partner = getattr(exc, "partner_id", None)
        print(f"webhooks: {f'no partner with id {partner}' if partner else exc.message}", file=sys.stderr)
        return 1
    except ServiceError as exc:
        print(f"webhooks: {exc.message}", file=sys.stderr)
        return 1
    except PyMongoError as exc:
        print(f"webhooks: MongoDB is unreachable ({type(exc).__name__})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
