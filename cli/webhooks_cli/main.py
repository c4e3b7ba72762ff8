"""The ``webhooks`` command: partners, the delivery log, replays, dead letters, the local runtime.

It talks to whatever MONGO_URI / AWS_ENDPOINT_URL / queue URLs point at; while
``webhooks local`` runs, it finds that runtime's endpoints in ``.local/state.json``.
The partner, catalog and delivery commands call the same service layer as the HTTP API.
"""

from __future__ import annotations

import argparse
import sys

from pymongo.errors import PyMongoError

from webhooks.config import ConfigError
from webhooks.errors import NotFound, ServiceError

from .commands import CliError, dead_letters, deliveries, event_types, local, migrate, partners


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webhooks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (local, partners, deliveries, event_types, migrate, dead_letters):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
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
