"""The local runtime refuses a moto or SecantusDB release other than the one its patches
were written for, naming what to install, before it patches anything."""

from __future__ import annotations

import subprocess
import sys

import pytest

from webhooks_cli import pins, servers
from webhooks_cli.pins import PinMismatch, pinned_version, require_pinned


def test_the_pins_come_from_pyproject() -> None:
    assert pinned_version("moto") == "5.2.5"
    assert pinned_version("secantusdb") == "0.7.0b3"


def test_the_pinned_release_installed_passes() -> None:
    require_pinned("moto", "SQS emulator", extras="[server]")
    require_pinned("secantusdb", "MongoDB server")


def test_another_moto_release_is_refused_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pins, "installed_version", lambda name: "5.3.0")
    with pytest.raises(PinMismatch) as caught:
        require_pinned("moto", "SQS emulator", extras="[server]")
    assert str(caught.value) == (
        "webhooks local's SQS emulator patches moto 5.2.5 internals; installed moto 5.3.0: "
        "pip install 'moto[server]==5.2.5'"
    )


def test_a_missing_secantusdb_is_refused_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pins, "installed_version", lambda name: None)
    with pytest.raises(
        PinMismatch, match=r"installed secantusdb \(none\): pip install 'secantusdb==0.7.0b3'"
    ):
        require_pinned("secantusdb", "MongoDB server")


def test_a_range_instead_of_a_pin_is_a_mistake_in_pyproject() -> None:
    with pytest.raises(RuntimeError, match="must pin waitress with =="):
        pinned_version("waitress")


@pytest.mark.parametrize("start", [servers.start_sqs, servers.start_mongo], ids=["sqs", "mongo"])
def test_the_runtime_refuses_before_starting_a_server(monkeypatch: pytest.MonkeyPatch, start: object) -> None:
    monkeypatch.setattr(pins, "installed_version", lambda name: "0.0.1")
    spawned: list[object] = []
    monkeypatch.setattr(servers, "_spawn", lambda *args: spawned.append(args))
    with pytest.raises(PinMismatch, match=r"installed \S+ 0\.0\.1:"):
        start()  # type: ignore[operator]
    assert spawned == []


# importlib.metadata answers another release for the patched library, as an upgrade would
IMPORT_WITH = r"""
import importlib.metadata
real = importlib.metadata.version
importlib.metadata.version = lambda name: "{version}" if name == "{name}" else real(name)
import {module}
"""


@pytest.mark.parametrize(
    ("module", "name", "message"),
    [
        ("webhooks_cli.sqs_server", "moto", "pip install 'moto[server]==5.2.5'"),
        ("webhooks_cli.secantus_server", "secantusdb", "pip install 'secantusdb==0.7.0b3'"),
    ],
)
def test_importing_a_patching_module_with_another_release_exits_with_the_message_alone(
    module: str, name: str, message: str
) -> None:
    """The check runs at import, before any patch: the process exits 1 with the message and
    no traceback. In a process of its own: the import patches the library."""
    script = IMPORT_WITH.format(version="9.9.9", name=name, module=module)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.strip().endswith(f"installed {name} 9.9.9: {message}")
    assert "Traceback" not in done.stderr
