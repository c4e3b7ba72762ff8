"""``webhooks local``: the whole pipeline on this machine, no Docker, no AWS account."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import os
import sys
from pathlib import Path

from webhooks.config import load_settings
from webhooks.partners.store import PartnerStore
from webhooks.store.mongo import get_database

from ..state import local_dir
from ..stop_signals import call_on_stop_signal


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    local.add_argument(
        "--api-workers",
        type=int,
        default=3,
        help="processes serving the API on its port, each one request at a time like a Lambda "
        "execution environment (default 3; 1 serves it inside the runtime's own process)",
    )
    local.add_argument(
        "--background-nice",
        type=int,
        default=19,
        help="how much lower the CPU priority of the dispatch and deliver work is than the API's "
        "(nice increment, default 19: deliveries use the CPU the API leaves; 0: the same)",
    )
    local.add_argument(
        "--queue-prefix", default="", help="prefix of the queue names (runtimes sharing one SQS endpoint)"
    )
    local.add_argument(
        "--log-format",
        choices=["auto", "human", "json"],
        default="auto",
        help="the functions' log lines: one short line per record, or Powertools' JSON "
        "(default auto: human when the output is a terminal)",
    )
    local.set_defaults(func=run)


def sign_in_hint(data_dir: Path) -> str:
    """How to sign in to the console as the operator. The key of this .local/ is a local
    development key (made for it, kept in a 0600 file there), so it is shown; a key set in
    the environment is not."""
    key_file = data_dir / "admin-key"
    key = os.environ.get("ADMIN_API_KEY", "")
    if key and key_file.exists() and key_file.read_text().strip() == key:
        return (
            f"sign in as Operator with the admin key {key} (kept in {key_file}; also the X-Admin-Key header)"
        )
    if key or os.environ.get("ADMIN_API_KEY_HASH"):
        return "sign in as Operator with the admin key you set (ADMIN_API_KEY / ADMIN_API_KEY_HASH)"
    return "sign in as a Partner with a partner's API key"


def run(args: argparse.Namespace) -> int:
    from ..demo import DEMO_EVENTS, curl_command, setup_demo
    from ..runtime import LocalRuntime, RuntimeOptions

    # the runtime's own lines (webhooks.local) only: a handler on the root logger would print
    # again whatever any library's logger passes up to it
    own = logging.StreamHandler()
    own.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    runtime_log = logging.getLogger("webhooks.local")
    runtime_log.addHandler(own)
    runtime_log.setLevel(logging.INFO)
    runtime_log.propagate = False
    human = args.log_format == "human" or (args.log_format == "auto" and sys.stdout.isatty())
    os.environ["WEBHOOKS_LOG_FORMAT"] = "human" if human else "json"  # for the API worker processes
    if human:
        from webhooks.observability import use_human_lines

        use_human_lines()
    # PORT through the settings: a bad one fails naming the variable, like any other
    port = args.port if args.port is not None else load_settings().port
    options = RuntimeOptions(
        port=port,
        partners_file=Path(args.partners) if args.partners else None,
        data_dir=local_dir(),
        dispatch_concurrency=args.dispatch_concurrency,
        deliver_concurrency=args.deliver_concurrency,
        batch_size=args.batch_size,
        max_batching_window=args.batching_window,
        api_workers=max(1, args.api_workers),
        background_nice=max(0, args.background_nice),
        queue_prefix=args.queue_prefix,
    )
    runtime = LocalRuntime(options)
    call_on_stop_signal(runtime.request_stop)
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
        print(f"API reference (Swagger UI): {api_url}/api/v1/docs", flush=True)
        print(f"Console: {api_url}/console\n  {sign_in_hint(options.data_dir)}", flush=True)
        print(f"API listening on {api_url}", flush=True)
        runtime.wait()
    finally:
        # a stop that hangs says where: every thread's stack on stderr after 40 s
        faulthandler.dump_traceback_later(40, exit=False)
        runtime.stop()
        faulthandler.cancel_dump_traceback_later()
        if receiver:
            receiver.stop()
        with contextlib.suppress(OSError):  # stdout may be a pipe that is gone already
            print("Stopped.", flush=True)
    return 0
