"""What each make target installs (read from `make -n -B`: the commands it would run)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def planned(target: str) -> str:
    return subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout


def test_make_run_installs_the_runtime_only() -> None:
    run = planned("run")
    assert 'pip install --quiet -e ".[local]"' in run and "webhooks local --demo" in run
    assert "[local,dev]" not in run and "aws-sam-cli" not in run and "chromium" not in run


def test_make_test_installs_the_test_tools_and_deploy_tools_the_sam_cli() -> None:
    test = planned("test")
    assert "[local,dev]" in test and "aws-sam-cli" in test and "chromium" in test
    deploy = planned("deploy-tools")
    assert "aws-sam-cli" in deploy and "chromium" not in deploy and "[local" not in deploy
