"""``webhooks endpoints``: a partner's endpoints (list, add, show, update, delete, rotate the
secret, enable, send a test), through the service layer the HTTP API's endpoint routes use."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from webhooks.services.schemas import EndpointCreate, EndpointUpdate, Rotation

from . import CliError, comma_list, json_flag, parsed, secret_overlap_flag, services, show, show_sent
from .partners import printable

HELP = {
    "list": "a partner's endpoints, its first (its own webhookUrl) first",
    "add": "add an endpoint; prints its signing secret once",
    "show": "one endpoint, with its health and parked deliveries",
    "update": "change what the options name (--clear removes a setting)",
    "delete": "delete an endpoint and its subscriptions (not the first)",
    "rotate-secret": "a new signing secret, printed once; the old one signs for --overlap-hours",
    "enable": "enable the endpoint and send it what was parked while it was disabled",
    "test": "send a webhook.test event to the endpoint now",
}
# --clear NAME -> the API field a null removes
CLEARABLE = {
    "filter": "filter",
    "headers": "headers",
    "schedule": "retrySchedule",
    "rate-limit": "rateLimitPerSecond",
    "timeout": "timeoutMs",
    "description": "description",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    endpoints = sub.add_parser("endpoints", help="manage a partner's endpoints")
    actions = endpoints.add_subparsers(dest="action", required=True)
    for name, text in HELP.items():
        p = actions.add_parser(name, help=text)
        p.add_argument("--partner", required=True, help="the partner's id")
        if name != "list" and name != "add":
            p.add_argument("endpoint_id", help="the endpoint's id (ep_...)")
        if name == "list":
            p.add_argument("--json", action="store_true")
        else:
            json_flag(p)
        if name in ("add", "update"):
            _settings_options(p, required=name == "add")
        if name == "update":
            p.add_argument(
                "--clear", action="append", default=[], choices=sorted(CLEARABLE), help="remove a setting"
            )
        if name == "rotate-secret":
            secret_overlap_flag(p)
    endpoints.set_defaults(func=run)


def _settings_options(p: argparse.ArgumentParser, required: bool) -> None:
    p.add_argument("--url", required=required, help="where the webhooks go")
    p.add_argument("--events", required=required, help="comma-separated: order.created,order.*,*")
    p.add_argument("--filter", help='JSON matched against the event: {"data": {"value": {"$gte": 100}}}')
    p.add_argument("--schedule", help="seconds between attempts, comma-separated: 5,300,1800")
    p.add_argument("--rate-limit", type=int, help="deliveries per second")
    p.add_argument("--timeout-ms", type=int, help="per-request timeout")
    p.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE", help="a custom header (repeat)"
    )
    p.add_argument("--description")


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The body the options give, in the API's names (what they leave out is absent)."""
    body: dict[str, Any] = {}
    if args.url is not None:
        body["url"] = args.url
    if args.events is not None:
        body["events"] = comma_list(args.events)
    if args.filter is not None:
        try:
            body["filter"] = json.loads(args.filter)
        except json.JSONDecodeError as exc:
            raise CliError(f"invalid --filter: not JSON ({exc.msg} at column {exc.colno})") from None
    if args.schedule is not None:
        try:
            body["retrySchedule"] = [int(s) for s in comma_list(args.schedule)]
        except ValueError:
            raise CliError(f"invalid --schedule {args.schedule!r}: whole seconds, e.g. 5,300,1800") from None
    if args.rate_limit is not None:
        body["rateLimitPerSecond"] = args.rate_limit
    if args.timeout_ms is not None:
        body["timeoutMs"] = args.timeout_ms
    if args.header:
        headers = {}
        for item in args.header:
            name, sep, value = item.partition("=")
            if not sep:
                raise CliError(f"invalid --header {item!r}: use NAME=VALUE")
            headers[name.strip()] = value
        body["headers"] = headers
    if args.description is not None:
        body["description"] = args.description
    return body


def run(args: argparse.Namespace) -> int:
    built = services()
    endpoints, partner = built.endpoints, args.partner
    action = args.action
    if action == "list":
        listed = endpoints.list(partner)["endpoints"]
        lines = "\n".join(
            printable(
                f"{e['endpointId']}  {e['health']['status']:<8}  {e['url']}  {','.join(e['events'])}"
                + ("  (first)" if e["first"] else "")
            )
            for e in listed
        )
        return show(listed, args.json, lines)
    if action == "add":
        created = endpoints.create(partner, parsed(EndpointCreate, "endpoint", **settings_of(args)))
        show(created)
        print("The signing secret is shown once: store it now.", file=sys.stderr)
        return 0
    endpoint_id = args.endpoint_id
    if action == "show":
        return show(endpoints.get(partner, endpoint_id))
    if action == "update":
        body = {**settings_of(args), **{CLEARABLE[name]: None for name in args.clear}}
        if not body:
            raise CliError("nothing to change: pass an option such as --url, --events or --clear")
        return show(endpoints.update(partner, endpoint_id, parsed(EndpointUpdate, "change", **body)))
    if action == "delete":
        return show(endpoints.delete(partner, endpoint_id))
    if action == "rotate-secret":
        rotation = parsed(Rotation, "overlap", overlapHours=args.overlap_hours)
        show(endpoints.rotate_secret(partner, endpoint_id, rotation))
        print("The signing secret is shown once: store it now.", file=sys.stderr)
        return 0
    if action == "enable":
        enabled = built.recovery.enable(partner, endpoint_id)
        show(enabled.body())
        return 0 if not enabled.failed else 1
    sent = built.recovery.test_endpoint(partner, endpoint_id)  # test
    return show_sent(sent.body(), sent.failed)
