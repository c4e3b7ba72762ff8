"""SIGTERM and SIGINT stop `webhooks local`, its API workers and its servers however they arrive.

Found: after a test killed a runtime, its API worker hung for good, its main thread stuck
in nested signal handlers, each waiting for the lock of the Event it was setting, held by
the same thread. The scripts below run in processes of their own (signal handlers and
``set_wakeup_fd`` belong to a process's main thread).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from webhooks_cli.servers import ServerProcess, free_port, start_api_workers, start_mongo, start_sqs

from conftest import Stack
from support import sigterm_burst

# The main thread holds the Event's lock when SIGTERM arrives: what it does inside
# Event.wait, or inside the Event.set of a signal that came a moment earlier.
SCRIPT = """
import os, signal, threading, time
stop = threading.Event()
{install}
with stop._cond:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)  # the Python-level handler runs in here
print("handler returned", flush=True)
print("stopped" if stop.wait(5) else "not stopped", flush=True)
"""
NAIVE = "signal.signal(signal.SIGTERM, lambda *_: stop.set())"
OURS = "from webhooks_cli.stop_signals import call_on_stop_signal\ncall_on_stop_signal(stop.set)"


def run(install: str, timeout: float) -> tuple[str, bool]:
    """The script's output, and whether it ended within ``timeout`` (killed if not)."""
    script = textwrap.dedent(SCRIPT).format(install=install)
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as process:
        try:
            out, _ = process.communicate(timeout=timeout)
            return out, True
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
            return out, False


def test_a_stop_signal_arriving_while_the_main_thread_holds_the_lock_still_stops() -> None:
    out, ended = run(OURS, timeout=10)
    assert ended and out.split() == ["handler", "returned", "stopped"]


def test_the_handler_it_replaces_hangs_in_the_same_moment() -> None:
    # the situation above is the one that hung the API worker: setting the Event from the
    # handler never returns
    out, ended = run(NAIVE, timeout=3)
    assert not ended and "handler returned" not in out


def test_an_api_worker_stops_after_a_burst_of_sigterms(stack: Stack, tmp_path: Path) -> None:
    [worker] = start_api_workers(free_port(), 29, tmp_path, 1)  # its settings: the stack's environment
    try:
        sigterm_burst(worker.pid)
        assert worker.process.wait(timeout=15) == 0
    finally:
        worker.process.kill()  # a hung worker is not left behind
        worker.stop()


@pytest.mark.parametrize("start", [start_mongo, start_sqs], ids=["secantusdb", "sqs-emulator"])
def test_the_local_servers_stop_after_a_burst_of_sigterms(start: Callable[[], ServerProcess]) -> None:
    # SecantusDB's own command line stops the server inside its handler: nested, the stops
    # waited for each other (2 of 4 bursts hung before webhooks_cli.secantus_server took
    # the signals on a thread of its own)
    server = start()
    try:
        sigterm_burst(server.pid)
        server.process.wait(timeout=15)  # the emulator may end by the signal itself (-15)
    finally:
        server.process.kill()  # a hung server is not left behind
        server.stop()
