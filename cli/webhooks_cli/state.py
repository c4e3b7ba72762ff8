"""Where the local runtime keeps its data and tells the CLI its endpoints (``.local/``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .servers import pid_alive

STATE_FILE = "state.json"


def local_dir() -> Path:
    return Path(os.environ.get("WEBHOOKS_LOCAL_DIR") or Path.cwd() / ".local")


def write_state(directory: Path, state: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(directory / STATE_FILE)


def read_state(directory: Path | None = None) -> dict[str, Any] | None:
    """The running local runtime's endpoints, or None if it is not running."""
    path = (directory or local_dir()) / STATE_FILE
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if pid_alive(int(state.get("pid", 0))) else None


def clear_state(directory: Path) -> None:
    (directory / STATE_FILE).unlink(missing_ok=True)
