"""The embedded development servers: moto's SQS server and SecantusDB (MongoDB wire protocol).

Both listen on a free 127.0.0.1 port, are waited for until they answer, and are stopped
by PID. Used by ``webhooks local`` and by the test fixtures.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .pins import require_pinned

LOOPBACK = "127.0.0.1"
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes] | None = field(default=None, repr=False)

    def request_stop(self) -> None:
        """Ask it to stop (SIGTERM) without waiting: :meth:`stop` waits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        try:
            self.process.wait(timeout)  # at once if it has already exited
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
        if self.log:
            self.log.close()

    @property
    def pid(self) -> int:
        return self.process.pid


def _wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} during start")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{name} did not answer on {LOOPBACK}:{port} within {timeout:g}s")


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it dies, however it dies (Linux)."""
    # not Linux: stop() still stops it, but a killed parent may leave it behind
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _spawn(name: str, argv: list[str], port: int, log_path: Path | None, timeout: float) -> ServerProcess:
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 - closed by stop()
    process = subprocess.Popen(
        argv,
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        preexec_fn=_die_with_parent,
    )
    try:
        _wait_for_port(port, process, name, timeout)
    except BaseException:
        if log:
            log.close()
        raise
    return ServerProcess(name, "", process, log)


def start_api_workers(
    port: int, timeout_seconds: float, data_dir: Path, count: int, ready_within: float = 60.0, first: int = 1
) -> list[ServerProcess]:
    """``count`` processes serving the API on ``port`` (held with SO_REUSEPORT by the runtime).
    Their settings come from this process's environment, which the runtime has completed by
    now; their log lines go where the runtime's go. All are launched at once; returns once
    every one listens: an import (a cold start, ~1.5 s of CPU) would otherwise compete with
    the first requests."""
    workers: list[tuple[ServerProcess, Path]] = []
    try:
        for number in range(first, first + count):
            ready = data_dir / f"api-worker-{number}.ready"
            ready.unlink(missing_ok=True)
            argv = [sys.executable, "-m", "webhooks_cli.api_worker", "--port", str(port)]
            argv += ["--timeout", str(timeout_seconds), "--ready-file", str(ready)]
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent
            )
            workers.append(
                (ServerProcess(f"api worker {number}", f"http://{LOOPBACK}:{port}", process), ready)
            )
        deadline = time.monotonic() + ready_within
        for worker, ready in workers:
            while not ready.exists():
                if worker.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{worker.name} did not start (its output is above)")
                time.sleep(0.05)
    except BaseException:
        for worker, _ in workers:
            worker.stop()
        raise
    return [worker for worker, _ in workers]


def start_sqs(
    log_path: Path | None = None,
    timeout: float = 20.0,
    port: int | None = None,
    state_file: Path | None = None,
) -> ServerProcess:
    """moto's SQS server (moto's own app, served lean: see ``sqs_server``); with
    ``state_file``, the queues' messages are saved there when it stops and back at its start."""
    require_pinned("moto", "SQS emulator", extras="[server]")  # here, not in its log file
    port = port or free_port()
    argv = [sys.executable, "-m", "webhooks_cli.sqs_server", "--host", LOOPBACK, "--port", str(port)]
    if state_file:
        argv += ["--state-file", str(state_file)]
    server = _spawn("moto SQS server", argv, port, log_path, timeout)
    server.url = f"http://{LOOPBACK}:{port}"
    return server


def start_mongo(
    storage: Path | str = ":memory:",
    log_path: Path | None = None,
    timeout: float = 20.0,
    port: int | None = None,
) -> ServerProcess:
    require_pinned("secantusdb", "MongoDB server")  # here, not in its log file
    port = port or free_port()
    if storage != ":memory:":
        Path(storage).mkdir(parents=True, exist_ok=True)
    # secantusd reading index options once per insert chunk (see secantus_server), standalone
    # as a plain mongod: no oplog entry per written document (a quarter of an insert's server
    # CPU, nearly half an upsert's). Nothing here reads change streams or uses transactions;
    # the driver does not retry writes to a standalone, which on loopback changes nothing.
    argv = [sys.executable, "-m", "webhooks_cli.secantus_server", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--storage-path", str(storage), "--standalone"]
    server = _spawn("secantusd", argv, port, log_path, timeout)
    server.url = f"mongodb://{LOOPBACK}:{port}/?directConnection=true"
    _wait_for_ping(server)
    return server


def _wait_for_ping(server: ServerProcess, timeout: float = 10.0) -> None:
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    deadline = time.monotonic() + timeout
    client: MongoClient[dict[str, Any]] = MongoClient(server.url, serverSelectionTimeoutMS=500)
    try:
        while True:
            try:
                client.admin.command("ping")
                return
            except PyMongoError:
                if time.monotonic() > deadline:
                    server.stop()
                    raise RuntimeError("secantusd did not answer a ping") from None
                time.sleep(0.1)
    finally:
        client.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
