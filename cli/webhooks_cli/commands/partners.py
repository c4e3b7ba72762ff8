"""``webhooks partners``: create, list, show, (de)activate, subscriptions, secrets, limits."""

from __future__ import annotations

import argparse
import os
import re
import sys

from webhooks.services.schemas import (
    EventPatterns,
    KeyRotation,
    PartnerCreate,
    PartnerUpdate,
    PortalTokenRequest,
    Rotation,
)

from ..state import read_state
from . import CliError, comma_list, json_flag, parsed, secret_overlap_flag, services, show

HELP = {
    "rate-limit": "deliveries per second for this partner, across all deliverers",
    "enable-endpoint": "enable an endpoint disabled for failing and send what was parked",
    "publish-scopes": "the event types this partner's API key may publish",
    "receive-scopes": "the event types the partner may subscribe its endpoints to itself",
    "rotate-api-key": "a new API key, printed once; the old one refused at once or after --overlap-hours",
    "portal-link": "a console link signed in as the partner, for --ttl (its token printed once)",
    "portal-revoke": "revoke every portal link of the partner at once",
}
TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
API_URL_VARIABLE = "WEBHOOKS_API_URL"  # the deployed API's URL, for portal links


def ttl_seconds(value: str) -> int:
    """``90s``, ``30m``, ``1h``, ``24h``, ``1d`` or plain seconds, as seconds (bounds: the API's)."""
    found = re.fullmatch(r"\s*([0-9]{1,9})\s*([smhd]?)\s*", value.lower())
    if not found:
        raise CliError(f"invalid --ttl {value!r}: use seconds or 90s, 30m, 1h, 24h, 1d")
    return int(found[1]) * TTL_UNITS[found[2]]


def api_url(given: str | None) -> str | None:
    """The API the link opens the console of: --api-url, else WEBHOOKS_API_URL, else the
    running ``webhooks local``; None when there is none (the token alone is still useful)."""
    url = given or os.environ.get(API_URL_VARIABLE) or (read_state() or {}).get("apiUrl")
    return str(url) if url else None


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on (ESC sequences, other control
    characters, bidi overrides) escaped as Python does, e.g. ``\\x1b``, ``\\u202e``: a
    name from a legacy document or another tool must not rewrite the operator's screen."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    partners = sub.add_parser("partners", help="manage partners and subscriptions")
    actions = partners.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a partner; prints its API key and secret once")
    create.add_argument("--name", required=True)
    create.add_argument("--url", required=True, help="webhook URL")
    create.add_argument("--events", required=True, help="comma-separated: order.created,order.*,*")
    json_flag(create)
    lst = actions.add_parser("list")
    lst.add_argument("--json", action="store_true")
    names = ("show", "deactivate", "activate", "delete", "rotate-secret", "subscribe", "unsubscribe", *HELP)
    for name in names:
        p = actions.add_parser(name, help=HELP.get(name))
        p.add_argument("partner_id")
        json_flag(p)
        if name in ("subscribe", "unsubscribe"):
            p.add_argument("--events", required=True)
        if name == "rate-limit":
            p.add_argument("--per-second", type=int, required=True, help="0 removes the limit")
        if name == "publish-scopes":
            p.add_argument(
                "--events", default="", help="comma-separated: order.*,cart.updated; empty removes the scopes"
            )
        if name == "receive-scopes":
            p.add_argument(
                "--events",
                default="",
                help="comma-separated: order.*,cart.updated; empty removes the scopes (any type)",
            )
        if name == "rotate-secret":
            secret_overlap_flag(p)
        if name == "rotate-api-key":
            p.add_argument(
                "--overlap-hours", type=float, default=0, help="how long the old key still works (default 0)"
            )
        if name == "portal-link":
            p.add_argument("--ttl", default="1h", help="how long the link works: 90s, 30m, 1h (default), 24h")
            p.add_argument(
                "--api-url",
                help=f"the API's URL (default: ${API_URL_VARIABLE}, else the running `webhooks local`)",
            )
    partners.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    action = args.action
    if action == "create":
        new = parsed(
            PartnerCreate, "partner", name=args.name, webhookUrl=args.url, events=comma_list(args.events)
        )
        created = services().partners.create(new)
        show(created)
        print("The API key and secret are shown once: store them now.", file=sys.stderr)
        return 0
    built = services()
    partners = built.partners
    if action == "list":
        found = partners.all()
        listed, skipped = found["partners"], found["skipped"]
        lines = "\n".join(
            printable(
                f"{p['partnerId']}  {'active  ' if p['isActive'] else 'inactive'}  {p['name']}  "
                f"{p['webhookUrl']}  {','.join(p['events'])}"
            )
            for p in listed
        )
        for bad in skipped:
            print(printable(f"skipped {bad['partnerId']}: {'; '.join(bad['problems'])}"), file=sys.stderr)
        return show(listed, args.json, lines or "(no partners)")
    partner_id = args.partner_id
    if action == "show":
        return show(partners.get(partner_id))
    if action == "delete":  # the partner and its subscriptions, as DELETE /admin/partners/{id}
        partners.delete(partner_id)
        return show({"deleted": partner_id})
    if action in ("deactivate", "activate"):
        return show(
            partners.update(partner_id, PartnerUpdate.model_validate({"isActive": action == "activate"}))
        )
    if action == "rotate-secret":
        return show(
            partners.rotate_secret(partner_id, parsed(Rotation, "overlap", overlapHours=args.overlap_hours))
        )
    if action == "rotate-api-key":
        rotation = parsed(KeyRotation, "overlap", overlapHours=args.overlap_hours)
        show(partners.rotate_api_key(partner_id, rotation))
        print("The API key is shown once: store it now.", file=sys.stderr)
        return 0
    if action == "portal-link":
        request = parsed(PortalTokenRequest, "--ttl", ttlSeconds=ttl_seconds(args.ttl))
        base = api_url(args.api_url)
        # without an API URL the token is still issued, its link relative to the API's root
        # (/console#portal=<token>); it works as `Authorization: Bearer <token>` too
        issued = built.portal.issue(partner_id, request, base or "")
        show(issued)
        if base is None:
            print(
                f"No API URL known, so the link is relative: pass --api-url or set {API_URL_VARIABLE} "
                "(e.g. https://abc.execute-api.<region>.amazonaws.com/v1); the link is "
                "<api-url>/console#portal=<token>.",
                file=sys.stderr,
            )
        print(
            f"Anyone with this link is signed in as the partner until {issued['expiresAt']}; "
            f"`webhooks partners portal-revoke {partner_id}` revokes it.",
            file=sys.stderr,
        )
        return 0
    if action == "portal-revoke":
        return show(built.portal.revoke(partner_id))
    if action in ("subscribe", "unsubscribe"):
        patterns = parsed(EventPatterns, "event types", events=comma_list(args.events))
        change = partners.subscribe if action == "subscribe" else partners.unsubscribe
        change(partner_id, patterns)
        return show(partners.get(partner_id))
    if action == "rate-limit":
        limit = parsed(PartnerUpdate, "rate limit", rateLimit=args.per_second or None)
        return show(partners.update(partner_id, limit))
    if action == "publish-scopes":
        scopes = comma_list(args.events) or None  # none: any but the platform's own
        return show(
            partners.update(partner_id, parsed(PartnerUpdate, "publish scopes", publishScopes=scopes))
        )
    if action == "receive-scopes":
        receive = comma_list(args.events) or None  # empty: removed, any type
        return show(
            partners.update(partner_id, parsed(PartnerUpdate, "receive scopes", receiveScopes=receive))
        )
    enabled = built.recovery.enable_endpoint(partner_id)  # enable-endpoint
    show(enabled.body())
    return 0 if not enabled.failed else 1
