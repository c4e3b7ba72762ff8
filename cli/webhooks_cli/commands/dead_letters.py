"""``webhooks dlq``: list dead-lettered deliveries and send them back to the delivery queue.

A dead letter delivered since (replay, recover, endpoint enable) is settled: removed from the
DLQ, never listed nor redriven (webhooks.delivery.dead_letters)."""

from __future__ import annotations

import argparse
import sys

from webhooks.queues import sqs_client

from .. import dlq
from . import CliError, settings_for_cli, show

UNCHECKED = "the delivery log (MongoDB) is unavailable: no letter was checked for a delivery since"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dead = sub.add_parser("dlq", help="dead-lettered deliveries")
    actions = dead.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list")
    listing.add_argument("--json", action="store_true")
    redrive = actions.add_parser("redrive")
    which = redrive.add_mutually_exclusive_group()
    which.add_argument("--event-id")
    which.add_argument("--all", action="store_true")
    redrive.add_argument("--json", action="store_true")
    dead.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_for_cli()
    settings.require("delivery_dlq_url")
    client = sqs_client(settings)
    if args.action == "list":
        outstanding = dlq.list_dead_letters(client, str(settings.delivery_dlq_url), settings)
        if outstanding.unchecked:
            print(f"note: {UNCHECKED}; letters delivered since may be listed", file=sys.stderr)
        letters = outstanding.letters
        lines = "\n".join(
            f"{d['eventId']}  {d['eventType']}  partner={d['partnerId']}  attempts={d['attempts']}  "
            f"status={d['lastStatus']}  {d['lastError']}"
            for d in letters
        )
        return show(letters, args.json, lines or "(no dead-lettered deliveries)")
    if not args.all and not args.event_id:
        raise CliError("say which: --event-id ID or --all")
    settings.require("delivery_queue_url")
    result = dlq.redrive(
        client, str(settings.delivery_dlq_url), str(settings.delivery_queue_url), args.event_id, settings
    )
    text = f"redrove {len(result.moved)} deliveries"
    if result.settled:
        text += f"; {len(result.settled)} delivered since they were dead-lettered, removed without sending"
    if result.unchecked:
        print(f"note: {UNCHECKED}; all were sent", file=sys.stderr)
    return show(result.moved, args.json, text)
