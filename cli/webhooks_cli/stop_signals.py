"""SIGTERM and SIGINT turned into an ordinary call, made from a thread of its own.

A Python signal handler runs in the main thread between two bytecodes, possibly while that
thread holds a lock. A handler that sets a ``threading.Event`` the main thread waits on can
then wait forever for the Event's lock, held by its own thread (inside ``Event.wait``, or
inside the ``Event.set`` of an earlier signal): a burst of SIGTERMs left an API worker
hanging after the runtime that started it was killed. Here the handler does nothing in
Python; the signal's number reaches a pipe from C (``signal.set_wakeup_fd``) and a thread
reading that pipe calls ``on_signal`` as ordinary code, which may take any lock.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def call_on_stop_signal(on_signal: Callable[[], None]) -> None:
    """From now on, the first SIGTERM or SIGINT calls ``on_signal`` (once, from another
    thread); later ones are ignored. Main thread only, as ``signal.signal``."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # set_wakeup_fd's requirement: a full pipe drops, never blocks
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    for number in STOP_SIGNALS:
        signal.signal(number, _ignore)

    def wait() -> None:
        os.read(read_end, 1)
        on_signal()

    threading.Thread(target=wait, name="stop-signal", daemon=True).start()


def _ignore(number: int, frame: object) -> None:
    """The Python-level handler: there must be one (or the signal ends the process), and it
    must take no lock."""
