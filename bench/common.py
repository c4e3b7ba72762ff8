"""Shared bench helpers: start `webhooks local`, a fast receiver, percentiles, printing."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from webhooks.signing import generate_secret  # noqa: E402
from webhooks_cli.servers import free_port  # noqa: E402

WEBHOOKS = str(Path(sys.executable).with_name("webhooks"))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):.1f} ms, p99 {pct(values, 99):.1f} ms, mean {statistics.fmean(values):.1f} ms"
    )


class FastReceiver:
    """A keep-alive HTTP receiver that records (eventId, arrival time) and answers a fixed status."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.arrivals: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                with receiver.lock:
                    receiver.arrivals.append((self.headers.get("X-Recart-Event-Id", ""), now))
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def partner(name: str, url: str, events: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "webhookUrl": url,
        "apiKey": f"bench-{name}-{os.urandom(6).hex()}",
        "secretKey": generate_secret(),
        "events": events,
        "isActive": True,
    }


class LocalRuntime:
    """`webhooks local` in a subprocess with its own embedded servers, for a benchmark."""

    def __init__(self, partners: list[dict[str, Any]], env: dict[str, str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-local-"))
        (self.dir / "partners.json").write_text(json.dumps(partners))
        self.port = free_port()
        full_env = {
            **os.environ,
            "WEBHOOKS_LOCAL_DIR": str(self.dir),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        for name in ("AWS_ENDPOINT_URL", "MONGO_URI"):
            full_env.pop(name, None)
        self.log = open(self.dir / "runtime.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            [WEBHOOKS, "local", "--port", str(self.port), "--partners", str(self.dir / "partners.json")],
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while "API listening on" not in (self.dir / "runtime.log").read_text():
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError((self.dir / "runtime.log").read_text())
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = json.loads((self.dir / "state.json").read_text())

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)
        self.log.close()
