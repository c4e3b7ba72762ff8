"""One module per command group; each adds its parser with ``register(subparsers)``:
``partners``, ``endpoints``, ``event_types``, ``deliveries`` (with ``replay`` and ``test``), ``dead_letters``
(``webhooks dlq``), ``migrate`` and ``local``.

What they share: the settings (env first, then a running ``webhooks local``), the service
layer the HTTP API uses (same validation, same errors), and how answers are printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from webhooks.config import Settings, load_settings
from webhooks.ingest.json_input import format_errors
from webhooks.store.mongo import get_database

from ..state import read_state

if TYPE_CHECKING:
    from webhooks.services import Services


class CliError(Exception):
    pass


def settings_for_cli() -> Settings:
    """Env vars win; what they leave unset comes from a running ``webhooks local``."""
    state = read_state()
    if state:
        for name, value in state.get("env", {}).items():
            os.environ.setdefault(name, value)
    return load_settings()


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (it is replaced in tests)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def services() -> Services:
    # imported here: they set up Powertools' logger, which must see `webhooks local`'s env first
    from webhooks.observability import logger
    from webhooks.queues import sqs_client
    from webhooks.services import build_services

    # stdout is the command's JSON answer; the layer's log lines go to stderr
    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(_Stderr())
    settings = settings_for_cli()
    if not settings.mongo_uri:
        raise CliError("No MongoDB to talk to: set MONGO_URI, or start `webhooks local` first")
    built = build_services(settings, get_database(settings), sqs_client(settings), cache_ttl=0)
    built.store.ensure_indexes()
    return built


def parsed(model: Any, what: str, **fields: Any) -> Any:
    """``model`` built from the command's options, refused in the API's words."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise CliError(f"invalid {what}: {format_errors(exc)}") from None


def comma_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def json_flag(parser: argparse.ArgumentParser) -> None:
    """``--json`` on a command whose answer is JSON either way: every command but ``local`` takes
    the flag, so a script can pass it to any of them without knowing which print a table."""
    parser.add_argument("--json", action="store_true", help="(output is always JSON)")


def secret_overlap_flag(parser: argparse.ArgumentParser) -> None:
    """``--overlap-hours`` of a secret rotation, a partner's or an endpoint's: the same rule."""
    parser.add_argument(
        "--overlap-hours",
        type=float,
        default=None,
        help="how long the old secret still signs (default SECRET_OVERLAP_HOURS, 24)",
    )


def show(value: Any, as_json: bool = True, text: str | None = None) -> int:
    print(json.dumps(value, indent=2) if as_json or text is None else text)
    return 0


def show_sent(body: dict[str, Any], failed: list[str]) -> int:
    """An operator's resend: the answer, and a failure exit when the queue refused any."""
    show(body)
    if failed:
        raise CliError(f"the delivery queue refused {len(failed)} delivery(ies); run the command again")
    return 0
