"""The ``webhooks`` command: partners, dead letters, and the local runtime.

It talks to whatever MONGO_URI / AWS_ENDPOINT_URL / queue URLs point at; while
``webhooks local`` runs, it finds that runtime's endpoints in ``.local/state.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError
from pymongo.errors import DuplicateKeyError, PyMongoError

from webhooks.config import ConfigError, Settings, load_settings
from webhooks.models import SubscriptionPattern
from webhooks.mongo import get_database
from webhooks.partners import Partner, PartnerNotFound, PartnerStore
from webhooks.queues import SqsQueue, sqs_client

from . import dlq
from .state import local_dir, read_state

if TYPE_CHECKING:
    from webhooks.events_api import Reply
    from webhooks.operations import Operations

_patterns: TypeAdapter[list[SubscriptionPattern]] = TypeAdapter(list[SubscriptionPattern])


class CliError(Exception):
    pass


def settings_for_cli() -> Settings:
    """Env vars win; what they leave unset comes from a running ``webhooks local``."""
    state = read_state()
    if state:
        for name, value in state.get("env", {}).items():
            os.environ.setdefault(name, value)
    return load_settings()


def _store(settings: Settings) -> PartnerStore:
    if not settings.mongo_uri:
        raise CliError("No MongoDB to talk to: set MONGO_URI, or start `webhooks local` first")
    store = PartnerStore(get_database(settings), cache_ttl=0)
    store.ensure_indexes()
    return store


def _events(value: str) -> list[str]:
    items = [e.strip() for e in value.split(",") if e.strip()]
    try:
        return _patterns.validate_python(items)
    except ValidationError:
        raise CliError(
            f"invalid event types {value!r}: use dot-separated lowercase segments, "
            "'prefix.*' or '*' (e.g. order.created,order.*)"
        ) from None


def _url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CliError(f"invalid webhook URL {value!r}: expected http(s)://host/...")
    return value


def _print(value: Any, as_json: bool, text: str | None = None) -> None:
    print(json.dumps(value, indent=2) if as_json or text is None else text)


def _partner_view(store: PartnerStore, partner: Partner) -> dict[str, Any]:
    return {**partner.public(), "events": store.subscriptions_of(partner.id)}


def cmd_partners(args: argparse.Namespace) -> int:
    store = _store(settings_for_cli())
    action = args.action
    if action == "create":
        try:
            created = store.create(args.name, _url(args.url), _events(args.events))
        except DuplicateKeyError:
            raise CliError("that API key is already in use") from None
        print(
            json.dumps(
                {
                    **created.partner.public(),
                    "events": created.events,
                    "apiKey": created.api_key,
                    "secretKey": created.secret_key,
                },
                indent=2,
            )
        )
        print("The API key and secret are shown once: store them now.", file=sys.stderr)
        return 0
    if action == "list":
        partners = [_partner_view(store, p) for p in store.all()]
        lines = "\n".join(
            f"{p['partnerId']}  {'active  ' if p['isActive'] else 'inactive'}  {p['name']}  "
            f"{p['webhookUrl']}  {','.join(p['events'])}"
            for p in partners
        )
        _print(partners, args.json, lines or "(no partners)")
        return 0
    partner_id = args.partner_id
    if action == "show":
        view = _partner_view(store, store.get(partner_id))
    elif action in ("deactivate", "activate"):
        view = _partner_view(store, store.set_active(partner_id, action == "activate"))
    elif action == "rotate-secret":
        # through the operations layer: the API's validation and its SECRET_OVERLAP_HOURS default
        overlap = {} if args.overlap_hours is None else {"overlapHours": args.overlap_hours}
        return _show(_operations().rotate_secret(partner_id, json.dumps(overlap)))
    elif action == "subscribe":
        store.subscribe(partner_id, _events(args.events))
        view = _partner_view(store, store.get(partner_id))
    elif action == "unsubscribe":
        store.unsubscribe(partner_id, _events(args.events))
        view = _partner_view(store, store.get(partner_id))
    elif action == "rate-limit":
        return _show(
            _operations().update_partner(partner_id, json.dumps({"rateLimit": args.per_second or None}))
        )
    elif action == "enable-endpoint":
        return _show(_operations().enable_endpoint(partner_id))
    elif action == "publish-scopes":
        scopes = _events(args.events) if args.events else None  # none: any but the platform's own
        return _show(_operations().update_partner(partner_id, json.dumps({"publishScopes": scopes})))
    else:  # pragma: no cover - argparse rejects unknown actions
        raise CliError(f"unknown action {action}")
    _print(view, True)
    return 0


def cmd_dlq(args: argparse.Namespace) -> int:
    settings = settings_for_cli()
    settings.require("delivery_dlq_url")
    client = sqs_client(settings)
    if args.action == "list":
        letters = dlq.list_dead_letters(client, str(settings.delivery_dlq_url))
        lines = "\n".join(
            f"{d['eventId']}  {d['eventType']}  partner={d['partnerId']}  attempts={d['attempts']}  "
            f"status={d['lastStatus']}  {d['lastError']}"
            for d in letters
        )
        _print(letters, args.json, lines or "(no dead-lettered deliveries)")
        return 0
    if not args.all and not args.event_id:
        raise CliError("say which: --event-id ID or --all")
    settings.require("delivery_queue_url")
    moved = dlq.redrive(
        client, str(settings.delivery_dlq_url), str(settings.delivery_queue_url), args.event_id
    )
    _print(moved, args.json, f"redrove {len(moved)} deliveries")
    return 0


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (it is replaced in tests)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _operations() -> Operations:
    # imported here: they set up Powertools' logger, which must see `webhooks local`'s env first
    from webhooks.catalog import EventTypeCatalog
    from webhooks.delivery_log import DeliveryLog, EventStore
    from webhooks.endpoint_health import ParkedDeliveries
    from webhooks.observability import logger
    from webhooks.operations import Operations

    # stdout is the command's JSON answer; the layer's log lines go to stderr
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(_Stderr())

    settings = settings_for_cli()
    store = _store(settings)
    db = get_database(settings)
    queue = (
        SqsQueue(sqs_client(settings), settings.delivery_queue_url) if settings.delivery_queue_url else None
    )
    return Operations(
        settings,
        store,
        DeliveryLog(db, settings.delivery_log_ttl_days),
        EventStore(db, settings.delivery_log_ttl_days),
        queue,
        EventTypeCatalog(db, cache_ttl=0),
        ParkedDeliveries(db, settings.delivery_log_ttl_days),
    )


def _show(reply: Reply) -> int:
    if reply.status_code >= 400:
        raise CliError(str(reply.body.get("error", reply.body)))
    print(json.dumps(reply.body, indent=2))
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    ops = _operations()
    if args.action == "event":
        return _show(ops.event_deliveries(args.event_id))
    query = {
        k: v
        for k, v in {
            "status": args.status,
            "since": args.since,
            "until": args.until,
            "cursor": args.cursor,
            "limit": args.limit,
            "eventId": args.event_id,
        }.items()
        if v
    }
    reply = ops.partner_deliveries(args.partner, query)
    if args.json or reply.status_code >= 400:
        return _show(reply)
    for d in reply.body["deliveries"]:
        print(
            f"{d['timestamp']}  {d['eventId']}  {d['eventType']}  attempt {d['attempt']}  {d['outcome']}  "
            f"status={d['statusCode']}  {d['latencyMs']} ms  {d['errorMessage'] or ''}"
        )
    if reply.body["nextCursor"]:
        print(f"(more: --cursor {reply.body['nextCursor']})")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    ops = _operations()
    if args.event_id:
        return _show(ops.replay(args.partner, json.dumps({"eventId": args.event_id})))
    return _show(ops.recover(args.partner, json.dumps({"since": args.since})))


def cmd_event_types(args: argparse.Namespace) -> int:
    ops = _operations()
    if args.action == "list":
        return _show(ops.list_event_types())
    if args.action == "show":
        return _show(ops.get_event_type(args.name))
    if args.action == "delete":
        return _show(ops.delete_event_type(args.name))
    try:
        schema = json.loads(Path(args.schema).read_text())
    except (OSError, ValueError) as exc:
        raise CliError(f"--schema {args.schema}: cannot read JSON: {exc}") from None
    return _show(
        ops.register_event_type(args.name, json.dumps({"schema": schema, "description": args.description}))
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    from webhooks.migrate import migrate

    settings = settings_for_cli()
    if not settings.mongo_uri:
        raise CliError("No MongoDB to talk to: set MONGO_URI (and MONGO_DB_NAME)")
    report = migrate(get_database(settings), dry_run=args.dry_run).as_json()
    summary = (
        f"{'would hash' if args.dry_run else 'hashed'} {len(report['hashedApiKeys'])} API key(s), "
        f"{report['alreadyMigrated']} already migrated, {len(report['problems'])} problem(s)"
    )
    _print(report, args.json, summary + "".join(f"\n  {p}" for p in report["problems"]))
    if report["secretMayBeUsedAsApiKey"] and not args.json:
        print(
            f"{len(report['secretMayBeUsedAsApiKey'])} partner(s) came from the Node service, whose "
            "producers sent the signing secret as X-API-Key: they must send the API key now.",
            file=sys.stderr,
        )
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    return _show(_operations().send_test(args.partner))


def cmd_local(args: argparse.Namespace) -> int:
    from .demo import DEMO_EVENTS, curl_command, setup_demo
    from .runtime import LocalRuntime, RuntimeOptions

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    port = args.port if args.port is not None else int(os.environ.get("PORT", "3000"))
    options = RuntimeOptions(
        port=port,
        partners_file=Path(args.partners) if args.partners else None,
        data_dir=local_dir(),
        dispatch_concurrency=args.dispatch_concurrency,
        deliver_concurrency=args.deliver_concurrency,
        batch_size=args.batch_size,
        max_batching_window=args.batching_window,
    )
    runtime = LocalRuntime(options)
    signal.signal(signal.SIGTERM, lambda *_: runtime.request_stop())
    signal.signal(signal.SIGINT, lambda *_: runtime.request_stop())
    api_url = runtime.start()
    receiver = None
    try:
        if args.demo:
            store = PartnerStore(get_database(load_settings()), cache_ttl=0)
            receiver, api_key = setup_demo(store, options.data_dir, sys.stdout)
            print(
                f"Demo partner subscribed to {', '.join(DEMO_EVENTS)}; its receiver ({receiver.url}) prints "
                "each webhook here. Post the sample events with:\n"
            )
            print("  " + curl_command(api_url, api_key) + "\n", flush=True)
        if (options.data_dir / "admin-key").exists() and not os.environ.get("ADMIN_API_KEY_HASH"):
            print(f"Admin API key (X-Admin-Key) is in {options.data_dir / 'admin-key'}", flush=True)
        print(f"API listening on {api_url}", flush=True)
        runtime.wait()
    finally:
        runtime.stop()
        if receiver:
            receiver.stop()
        with contextlib.suppress(OSError):  # stdout may be a pipe that is gone already
            print("Stopped.", flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webhooks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="run the whole pipeline on this machine")
    local.add_argument("--port", type=int, default=None, help="API port (default: $PORT or 3000)")
    local.add_argument("--partners", help="JSON file of partners to upsert by name at start")
    local.add_argument(
        "--demo", action="store_true", help="add a demo partner and a receiver that prints webhooks"
    )
    local.add_argument("--dispatch-concurrency", type=int, default=2)
    local.add_argument("--deliver-concurrency", type=int, default=4)
    local.add_argument(
        "--batch-size", type=int, default=10, help="records per invocation, as the event source's"
    )
    local.add_argument("--batching-window", type=float, default=0.0, help="seconds to wait to fill a batch")
    local.set_defaults(func=cmd_local)

    partners = sub.add_parser("partners", help="manage partners and subscriptions")
    actions = partners.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a partner; prints its API key and secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--url", required=True, help="webhook URL")
    create.add_argument("--events", required=True, help="comma-separated: order.created,order.*,*")
    create.add_argument("--json", action="store_true", help="(output is always JSON)")
    lst = actions.add_parser("list")
    lst.add_argument("--json", action="store_true")
    helps = {
        "rate-limit": "deliveries per second for this partner, across all deliverers",
        "enable-endpoint": "enable an endpoint disabled for failing and send what was parked",
        "publish-scopes": "the event types this partner's API key may publish",
    }
    names = ("show", "deactivate", "activate", "rotate-secret", "subscribe", "unsubscribe", *helps)
    for name in names:
        p = actions.add_parser(name, help=helps.get(name))
        p.add_argument("partner_id")
        p.add_argument("--json", action="store_true", help="(output is always JSON)")
        if name in ("subscribe", "unsubscribe"):
            p.add_argument("--events", required=True)
        if name == "rate-limit":
            p.add_argument("--per-second", type=int, required=True, help="0 removes the limit")
        if name == "publish-scopes":
            p.add_argument(
                "--events", default="", help="comma-separated: order.*,cart.updated; empty removes the scopes"
            )
        if name == "rotate-secret":
            p.add_argument(
                "--overlap-hours",
                type=float,
                default=None,
                help="how long the old secret still signs (default SECRET_OVERLAP_HOURS, 24)",
            )
    partners.set_defaults(func=cmd_partners)

    deliveries = sub.add_parser("deliveries", help="the delivery log")
    d_actions = deliveries.add_subparsers(dest="action", required=True)
    d_list = d_actions.add_parser("list", help="a partner's attempts, newest first")
    d_list.add_argument("--partner", required=True)
    d_list.add_argument("--status", choices=["delivered", "failed"])
    d_list.add_argument("--since", help="ISO-8601 time")
    d_list.add_argument("--until", help="ISO-8601 time")
    d_list.add_argument("--event-id")
    d_list.add_argument("--limit", type=int)
    d_list.add_argument("--cursor")
    d_list.add_argument("--json", action="store_true")
    d_event = d_actions.add_parser("event", help="every attempt of one event")
    d_event.add_argument("event_id")
    d_event.add_argument("--json", action="store_true", help="(output is always JSON)")
    deliveries.set_defaults(func=cmd_deliveries)

    replay = sub.add_parser("replay", help="resend deliveries to a partner through the delivery queue")
    replay.add_argument("--partner", required=True)
    what = replay.add_mutually_exclusive_group(required=True)
    what.add_argument("--event-id", help="resend this event")
    what.add_argument("--since", help="resend every delivery that failed since this ISO-8601 time")
    replay.add_argument("--json", action="store_true", help="(output is always JSON)")
    replay.set_defaults(func=cmd_replay)

    types = sub.add_parser("event-types", help="the event type catalog (JSON Schemas that ingest enforces)")
    t_actions = types.add_subparsers(dest="action", required=True)
    register = t_actions.add_parser("register", help="register or replace an event type's schema")
    register.add_argument("name")
    register.add_argument("--schema", required=True, help="file with a JSON Schema for the events' data")
    register.add_argument("--description", default="")
    register.add_argument("--json", action="store_true", help="(output is always JSON)")
    for action in ("list", "show", "delete"):
        t = t_actions.add_parser(action)
        if action != "list":
            t.add_argument("name")
        t.add_argument("--json", action="store_true", help="(output is always JSON)")
    types.set_defaults(func=cmd_event_types)

    test = sub.add_parser("test", help="send a webhook.test event to a partner now")
    test.add_argument("--partner", required=True)
    test.add_argument("--json", action="store_true", help="(output is always JSON)")
    test.set_defaults(func=cmd_test)

    mig = sub.add_parser("migrate", help="bring a database written by the Node service up to this data model")
    mig.add_argument("--dry-run", action="store_true", help="report what would change; change nothing")
    mig.add_argument("--json", action="store_true")
    mig.set_defaults(func=cmd_migrate)

    dead = sub.add_parser("dlq", help="dead-lettered deliveries")
    dead_actions = dead.add_subparsers(dest="action", required=True)
    dl = dead_actions.add_parser("list")
    dl.add_argument("--json", action="store_true")
    rd = dead_actions.add_parser("redrive")
    which = rd.add_mutually_exclusive_group()
    which.add_argument("--event-id")
    which.add_argument("--all", action="store_true")
    rd.add_argument("--json", action="store_true")
    dead.set_defaults(func=cmd_dlq)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except (CliError, ConfigError) as exc:
        print(f"webhooks: {exc}", file=sys.stderr)
        return 2
    except PartnerNotFound as exc:
        print(f"webhooks: no partner with id {exc}", file=sys.stderr)
        return 1
    except PyMongoError as exc:
        print(f"webhooks: MongoDB is unreachable ({type(exc).__name__})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
