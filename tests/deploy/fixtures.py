"""Fixtures of the deploy suite: Python 3.12, an AWS emulator serving every service, the builds.

The emulator is moto's full server (S3, SSM, SQS, IAM, ...) on a free 127.0.0.1 port. The
two builds (arm64 as a user runs it, x86_64 to run the artifacts on this machine) are made
once per session from a clean copy of the repo. A missing Python 3.12 fails these tests
with what to install: they are never skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from webhooks_cli.servers import ServerProcess, _spawn, free_port

from deploy.samcli import Build, Missing, clean_copy, find_python312, run_sam, sam_env


@pytest.fixture(scope="session")
def python312() -> str:
    try:
        return find_python312()
    except Missing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def aws_emulator() -> Iterator[str]:
    """moto's server with every service (the suite's own SQS server serves SQS only)."""
    port = free_port()
    server: ServerProcess = _spawn(
        "moto server",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        port,
        None,
        30,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _build(python312: str, architecture: str) -> Build:
    folder = clean_copy(architecture)
    args = ["build"]  # as the README says; the samconfig in the copy supplies the rest
    if architecture != "arm64":
        args += ["--parameter-overrides", f"Architecture={architecture}"]
    output = run_sam(args, folder, sam_env(python312))
    return Build(architecture, folder, output)


@pytest.fixture(scope="session")
def arm64_build(python312: str) -> Build:
    return _build(python312, "arm64")


@pytest.fixture(scope="session")
def x86_64_build(python312: str) -> Build:
    return _build(python312, "x86_64")
