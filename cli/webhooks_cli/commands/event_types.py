"""``webhooks event-types``: the catalog of JSON Schemas that ingest enforces."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from webhooks.services.schemas import EventTypeRegistration

from . import CliError, json_flag, parsed, services, show


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    types = sub.add_parser("event-types", help="the event type catalog (JSON Schemas that ingest enforces)")
    actions = types.add_subparsers(dest="action", required=True)
    reg = actions.add_parser("register", help="register or replace an event type's schema")
    reg.add_argument("name")
    reg.add_argument("--schema", required=True, help="file with a JSON Schema for the events' data")
    reg.add_argument("--description", default="")
    json_flag(reg)
    for action in ("list", "show", "delete"):
        t = actions.add_parser(action)
        if action != "list":
            t.add_argument("name")
        json_flag(t)
    types.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    catalog = services().event_types
    if args.action == "list":
        return show({"eventTypes": catalog.all()})
    if args.action == "show":
        return show(catalog.get(args.name))
    if args.action == "delete":
        catalog.delete(args.name)
        return show({"deleted": args.name})
    try:
        schema = json.loads(Path(args.schema).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"--schema {args.schema}: cannot read JSON: {exc}") from None
    registration = parsed(EventTypeRegistration, "event type", schema=schema, description=args.description)
    return show(catalog.register(args.name, registration))
