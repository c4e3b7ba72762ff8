"""``webhooks deliveries``, ``replay`` and ``test``: the delivery log and sending again."""

from __future__ import annotations

import argparse

from webhooks.services.schemas import DeliveryQuery, RecoverRequest

from . import json_flag, parsed, services, show, show_sent


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deliveries = sub.add_parser("deliveries", help="the delivery log")
    actions = deliveries.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="a partner's attempts, newest first")
    listing.add_argument("--partner", required=True)
    listing.add_argument("--status", choices=["delivered", "failed"])
    listing.add_argument("--since", help="ISO-8601 time")
    listing.add_argument("--until", help="ISO-8601 time")
    listing.add_argument("--event-id")
    listing.add_argument("--endpoint", help="only the attempts made to this endpoint id")
    listing.add_argument("--limit", type=int)
    listing.add_argument("--cursor")
    listing.add_argument("--json", action="store_true")
    event = actions.add_parser("event", help="every attempt of one event")
    event.add_argument("event_id")
    json_flag(event)
    deliveries.set_defaults(func=run_deliveries)

    replay = sub.add_parser("replay", help="resend deliveries to a partner through the delivery queue")
    replay.add_argument("--partner", required=True)
    what = replay.add_mutually_exclusive_group(required=True)
    what.add_argument("--event-id", help="resend this event")
    what.add_argument("--since", help="resend every delivery that failed since this ISO-8601 time")
    replay.add_argument(
        "--endpoint",
        help="only to this endpoint id (--event-id: an event the delivery log shows was sent to "
        "the partner, of a type the endpoint is subscribed to; --since: what failed at it)",
    )
    replay.add_argument(
        "--force",
        action="store_true",
        help="with --event-id: send even if the partner is not subscribed to its type",
    )
    json_flag(replay)
    replay.set_defaults(func=run_replay)

    test = sub.add_parser("test", help="send a webhook.test event to a partner now")
    test.add_argument("--partner", required=True)
    json_flag(test)
    test.set_defaults(func=run_test)


def run_deliveries(args: argparse.Namespace) -> int:
    log = services().deliveries
    if args.action == "event":
        return show(log.of_event(args.event_id))
    options = {
        "status": args.status,
        "since": args.since,
        "until": args.until,
        "cursor": args.cursor,
        "limit": args.limit,
        "eventId": args.event_id,
        "endpointId": args.endpoint,
    }
    query = parsed(DeliveryQuery, "query", **{k: v for k, v in options.items() if v})
    page = log.of_partner(args.partner, query)
    if args.json:
        return show(page)
    for d in page["deliveries"]:
        print(
            f"{d['timestamp']}  {d['eventId']}  {d['eventType']}  {d['endpointId']}  "
            f"attempt {d['attempt']}  {d['outcome']}  "
            f"status={d['statusCode']}  {d['latencyMs']} ms  {d['errorMessage'] or ''}"
        )
    if page["nextCursor"]:
        print(f"(more: --cursor {page['nextCursor']})")
    return 0


def run_replay(args: argparse.Namespace) -> int:
    recovery = services().recovery
    if args.event_id and args.endpoint:
        # the operator's rule (the endpoint subscribed to the event's type, or --force), not the
        # partner's own (which needs the event in its delivery log)
        result = recovery.operator_replay_to_endpoint(
            args.partner, args.endpoint, args.event_id, force=args.force
        )
    elif args.event_id:
        result = recovery.replay(args.partner, args.event_id, force=args.force)
    else:
        since = parsed(RecoverRequest, "time", since=args.since).since
        if args.endpoint:
            result = recovery.recover_endpoint(args.partner, args.endpoint, since)
        else:
            result = recovery.recover(args.partner, since)
    return show_sent(result.body(), result.failed)


def run_test(args: argparse.Namespace) -> int:
    result = services().recovery.send_test(args.partner)
    return show_sent(result.body(), result.failed)
