"""`webhooks local` as a subprocess, for end-to-end tests and benchmarks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from webhooks_cli.servers import free_port

WEBHOOKS = str(Path(sys.executable).with_name("webhooks"))
ENDPOINT_VARS = (
    "AWS_ENDPOINT_URL",
    "MONGO_URI",
    "EVENTS_QUEUE_URL",
    "EVENTS_DLQ_URL",
    "DELIVERY_QUEUE_URL",
    "DELIVERY_DLQ_URL",
    "MONGO_DB_NAME",
)


class RuntimeProcess:
    """Starts `webhooks local` and waits for `API listening on`.

    The runtime starts its own embedded servers unless ``env`` names endpoints
    (AWS_ENDPOINT_URL / MONGO_URI); endpoints of the calling test's own environment are
    never inherited by accident.
    """

    def __init__(
        self,
        partners: list[dict[str, Any]] | None = None,
        env: dict[str, str] | None = None,
        data_dir: Path | None = None,
        capture: bool = True,
        api_workers: int | None = None,
        args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="webhooks-local-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        base = {k: v for k, v in os.environ.items() if k not in ENDPOINT_VARS}
        self.env = {**base, "WEBHOOKS_LOCAL_DIR": str(self.data_dir), **(env or {})}
        argv = [WEBHOOKS, "local", "--port", str(self.port), *(args or [])]
        if api_workers is not None:
            argv += ["--api-workers", str(api_workers)]
        shared = os.environ.get("AWS_ENDPOINT_URL") if os.environ.get("WEBHOOKS_TEST_TARGET") else None
        if shared and not (env or {}).get("AWS_ENDPOINT_URL"):
            # `make test-localstack`: every runtime on the one LocalStack, each with its queues
            self.env["AWS_ENDPOINT_URL"] = shared
            argv += ["--queue-prefix", f"e{uuid.uuid4().hex[:10]}-"]
        if partners is not None:
            partners_file = self.data_dir / "partners.json"
            partners_file.write_text(json.dumps(partners))
            argv += ["--partners", str(partners_file)]
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        self._capture = capture
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.time() + 60
        while not any(line.startswith("API listening on") for line in self.lines):
            if self.process.poll() is not None or time.time() > deadline:
                self.process.kill()
                raise RuntimeError("webhooks local did not start:\n" + "\n".join(self.lines))
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = json.loads((self.data_dir / "state.json").read_text())

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            if self._capture or len(self.lines) < 200:
                self.lines.append(line.rstrip("\n"))

    @property
    def endpoints(self) -> dict[str, str]:
        env: dict[str, str] = self.state["env"]
        return env

    def post(
        self,
        events: list[dict[str, Any]],
        api_key: str | None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if api_key is not None:
            all_headers["X-API-Key"] = api_key
        request = urllib.request.Request(
            f"{self.url}/api/v1/events",
            method="POST",
            headers=all_headers,
            data=raw if raw is not None else json.dumps(events).encode(),
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}",
            method=method,
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def cli(self, *args: str) -> Any:
        result = subprocess.run([WEBHOOKS, *args], env=self.env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if "--json" in args or args[0] == "partners" else result.stdout

    def stop(self) -> int:
        """SIGTERM and wait for the exit; ``lines`` then holds every line the runtime wrote
        (its output read to the end, not only what the reader thread had reached)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)
