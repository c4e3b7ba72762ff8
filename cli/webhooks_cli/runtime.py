"""``webhooks local``: the whole pipeline on one machine, no Docker, no AWS account.

Starts moto's SQS server and SecantusDB on free loopback ports (unless AWS_ENDPOINT_URL /
MONGO_URI point elsewhere), creates the queues as the template does, serves the ingest
handler over HTTP as API Gateway would, and runs one poller per queue that invokes the
dispatch and deliver handlers as Lambda's SQS event source does.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from webhooks.config import load_settings
from webhooks.partners.portal_tokens import PortalTokens
from webhooks.partners.store import PartnerStore
from webhooks.queues import sqs_client
from webhooks.store.indexes import ensure_indexes
from webhooks.store.mongo import get_database

from .apigw import ApiServer, hold_port
from .lambdas import load_handler
from .poller import Poller, PollerConfig
from .servers import ServerProcess, start_api_workers, start_mongo, start_sqs
from .state import clear_state, write_state
from .topology import FUNCTION_TIMEOUTS, create_queues

log = logging.getLogger("webhooks.local")
STOP_SECONDS = 30.0  # in-flight invocations get this long to finish when the runtime stops
WORKER_CHECK_SECONDS = 1.0  # how often the runtime looks for API workers that exited
SQS_STATE_FILE = "sqs-queues.json"  # the embedded SQS server's messages between runs
SERVER_STOP_SECONDS = 30.0  # the SQS server writes its messages out as it stops

# What the template sets for every function, with local-friendly defaults.
LOCAL_DEFAULTS = {
    "ALLOW_PRIVATE_DESTINATIONS": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "webhooks",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class RuntimeOptions:
    port: int = 3000
    partners_file: Path | None = None
    data_dir: Path = field(default_factory=lambda: Path(".local"))
    dispatch_concurrency: int = 2
    deliver_concurrency: int = 4
    batch_size: int = 10
    max_batching_window: float = 0.0
    # processes serving the API, each one request at a time; from 2 on, all are worker
    # processes and this one only holds the port (1: this process serves it)
    api_workers: int = 3
    # the pollers' threads run this much lower in CPU priority than the API (see _start)
    background_nice: int = 19
    queue_prefix: str = ""  # runtimes sharing one SQS endpoint (LocalStack) keep apart


class LocalRuntime:
    def __init__(self, options: RuntimeOptions) -> None:
        self.options = options
        self.servers: list[ServerProcess] = []
        self.api_workers: list[ServerProcess] = []
        self.pollers: list[Poller] = []
        self.api: ApiServer | None = None
        self.port_holder: socket.socket | None = None
        self.env: dict[str, str] = {}
        self._stopped = threading.Event()

    def start(self) -> str:
        """Start everything; return the API's base URL."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> str:
        data_dir = self.options.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        for name, value in LOCAL_DEFAULTS.items():
            os.environ.setdefault(name, value)
        if not os.environ.get("AWS_ENDPOINT_URL") and not os.environ.get("LOCALSTACK_HOST"):
            sqs = start_sqs(log_path=data_dir / "sqs.log", state_file=data_dir / SQS_STATE_FILE)
            self.servers.append(sqs)
            os.environ["AWS_ENDPOINT_URL"] = sqs.url
        if not os.environ.get("MONGO_URI"):
            mongo = start_mongo(storage=data_dir / "mongo", log_path=data_dir / "mongo.log")
            self.servers.append(mongo)
            os.environ["MONGO_URI"] = mongo.url

        if not os.environ.get("ADMIN_API_KEY") and not os.environ.get("ADMIN_API_KEY_HASH"):
            os.environ["ADMIN_API_KEY"] = local_admin_key(data_dir)
        settings = load_settings()
        client = sqs_client(settings)
        for name, url in create_queues(client, self.options.queue_prefix).items():
            os.environ.setdefault(name, url)
        settings = load_settings()  # again, with the queue URLs

        # every collection and index before anything serves (webhooks.store.indexes says why)
        db = get_database(settings)
        ensure_indexes(db, settings.delivery_log_ttl_days)
        store = PartnerStore(db, settings.cache_ttl_seconds)
        if self.options.partners_file:
            load_partners_file(store, self.options.partners_file)

        pollers = [
            ("dispatch", str(settings.events_queue_url), self.options.dispatch_concurrency),
            ("deliver", str(settings.delivery_queue_url), self.options.deliver_concurrency),
        ]
        for name, url, concurrency in pollers:
            config = PollerConfig(
                function_name=name,
                queue_url=url,
                batch_size=self.options.batch_size,
                max_batching_window=self.options.max_batching_window,
                concurrency=concurrency,
                timeout_seconds=FUNCTION_TIMEOUTS[name],
                nice=self.options.background_nice,
            )
            self.pollers.append(Poller(client, load_handler(name), config))
        for poller in self.pollers:
            poller.start()

        # On AWS the API and the deliveries never share a CPU. Here they share two cores, so
        # the pollers (dispatch, deliver and the threads they start) run at a lower priority
        # and, with worker processes, no request waits for this process's interpreter lock
        # behind them: a burst of posts is accepted first and its deliveries follow.
        timeout = FUNCTION_TIMEOUTS["ingest"]
        if self.options.api_workers > 1:
            self.port_holder = hold_port(self.options.port)
            port = int(self.port_holder.getsockname()[1])
            self.api_workers = start_api_workers(port, timeout, data_dir, self.options.api_workers)
        else:
            self.api = ApiServer(load_handler("ingest"), self.options.port, timeout_seconds=timeout)
            self.api.start()
            port = self.api.port
        api_url = f"http://127.0.0.1:{port}"
        self.env = {
            k: os.environ[k]
            for k in (
                "AWS_ENDPOINT_URL",
                "MONGO_URI",
                "MONGO_DB_NAME",
                "EVENTS_QUEUE_URL",
                "EVENTS_DLQ_URL",
                "DELIVERY_QUEUE_URL",
                "DELIVERY_DLQ_URL",
                # the CLI checks webhook URLs as this runtime's API does
                "ALLOW_PRIVATE_DESTINATIONS",
            )
            if os.environ.get(k)
        }
        write_state(data_dir, {"pid": os.getpid(), "apiUrl": api_url, "env": self.env})
        return api_url

    def wait(self) -> None:
        """Until a stop is asked; an API worker that exits meanwhile (killed, crashed) is
        replaced, as Lambda replaces an execution environment that died."""
        while not self._stopped.wait(WORKER_CHECK_SECONDS):
            self._replace_exited_workers()

    def _replace_exited_workers(self) -> None:
        if self.port_holder is None:
            return
        port = int(self.port_holder.getsockname()[1])
        for index, worker in enumerate(self.api_workers):
            code = worker.process.poll()
            if code is None or self._stopped.is_set():
                continue
            log.warning("%s exited (code %s); starting another", worker.name, code)
            try:  # the replacement takes the dead one's number (its name and ready file)
                [self.api_workers[index]] = start_api_workers(
                    port, FUNCTION_TIMEOUTS["ingest"], self.options.data_dir, 1, first=index + 1
                )
            except RuntimeError as exc:  # tried again at the next check
                log.error("could not replace %s: %s", worker.name, exc)

    def request_stop(self) -> None:
        self._stopped.set()

    def stop(self) -> None:
        """Stop serving and polling (in-flight invocations finish), then the servers we started."""
        if self.api:
            self.api.stop()
            self.api = None
        for worker in self.api_workers:  # each finishes its request and exits meanwhile
            worker.request_stop()
        for poller in self.pollers:
            poller.request_stop()
        deadline = time.monotonic() + STOP_SECONDS  # one budget for all, not one each
        for poller in self.pollers:
            poller.stop(max(0.0, deadline - time.monotonic()))
        self.pollers = []
        for worker in self.api_workers:
            worker.stop()
        self.api_workers = []
        if self.port_holder is not None:
            self.port_holder.close()
            self.port_holder = None
        from webhooks.store.mongo import close_all

        close_all()
        for server in reversed(self.servers):
            server.stop(SERVER_STOP_SECONDS)
        self.servers = []
        clear_state(self.options.data_dir)
        self._stopped.set()


def local_admin_key(data_dir: Path) -> str:
    """The management API's admin key for this .local/ (made once, kept in a 0600 file)."""
    path = data_dir / "admin-key"
    if path.exists():
        return path.read_text().strip()
    key = "adm_" + secrets.token_urlsafe(24)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def load_partners_file(store: PartnerStore, path: Path) -> int:
    """Upsert each partner of a ``--partners`` JSON file by name (API keys hashed on the way in)."""
    try:
        entries: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"--partners {path}: cannot read JSON: {exc}") from None
    if not isinstance(entries, list):
        raise SystemExit(f"--partners {path}: expected a JSON array of partners")
    for n, entry in enumerate(entries):
        missing = [k for k in ("name", "webhookUrl", "apiKey", "secretKey") if not entry.get(k)]
        if missing:
            raise SystemExit(f"--partners {path}: entry [{n}] lacks {', '.join(missing)}")
        partner = store.upsert_by_name(
            entry["name"],
            entry["webhookUrl"],
            entry.get("events") or [],
            api_key=entry["apiKey"],
            secret_key=entry["secretKey"],
            is_active=bool(entry.get("isActive", True)),
        )
        if not partner.is_active:  # as a deactivation through the API: no console link outlives it
            PortalTokens(store.partners.database).revoke_all(partner.id)
    return len(entries)
