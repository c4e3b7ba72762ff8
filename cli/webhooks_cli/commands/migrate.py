"""``webhooks migrate``: bring a database written by the Node service up to this data model."""

from __future__ import annotations

import argparse
import sys

from webhooks.store.mongo import get_database

from . import CliError, settings_for_cli, show


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    mig = sub.add_parser("migrate", help="bring a database written by the Node service up to this data model")
    mig.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")
    mig.add_argument("--json", action="store_true")
    mig.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from webhooks.store.migrate import migrate

    settings = settings_for_cli()
    if not settings.mongo_uri:
        raise CliError("No MongoDB to talk to: set MONGO_URI (and MONGO_DB_NAME)")
    report = migrate(
        get_database(settings), dry_run=args.dry_run, delivery_log_ttl_days=settings.delivery_log_ttl_days
    ).as_json()
    summary = (
        f"{'would hash' if args.dry_run else 'hashed'} {len(report['hashedApiKeys'])} API key(s), "
        f"{report['alreadyMigrated']} already migrated, {len(report['problems'])} problem(s), "
        f"{len(report['legacyApiKeys'])} legacy API key(s) to rotate"
    )
    show(report, args.json, summary + "".join(f"\n  {p}" for p in report["problems"]))
    if report["secretMayBeUsedAsApiKey"] and not args.json:
        print(
            f"{len(report['secretMayBeUsedAsApiKey'])} partner(s) came from the Node service, whose "
            "producers sent the signing secret as X-API-Key: they must send the API key now.",
            file=sys.stderr,
        )
    if report["legacyApiKeys"] and not args.json:
        print(
            f"{len(report['legacyApiKeys'])} partner(s) still use an API key from the Node service "
            "(apiKeyLegacy): rotate each with `webhooks partners rotate-api-key <id>`.",
            file=sys.stderr,
        )
    return 0
