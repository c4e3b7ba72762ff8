"""SAM CLI and Python 3.12 for the deploy tests: find them, build a clean copy, deploy to an emulator.

The SAM CLI lives in ``.venv-tools`` (``make install``). ``sam build`` of a python3.12
function needs a working ``python3.12``: on PATH, else under pyenv. The builds run in a
copy of the files git knows (tracked, or new and not ignored), kept under
``.venv-tools/deploy-builds/<arch>`` so SAM's ``cached`` build can reuse what did not change.

``python tests/deploy/samcli.py python312`` prints the interpreter it would use.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".venv-tools"
SAM = TOOLS / "bin" / "sam"
BUILDS = TOOLS / "deploy-builds"
# boto3 as the Lambda runtime provides it (not in our layer): installed for python3.12 once
LAMBDA_RUNTIME = TOOLS / "lambda-runtime-py312"
LAMBDA_RUNTIME_BOTO3 = "boto3>=1.40,<2"
REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


class Missing(RuntimeError):
    """A tool the deploy tests need is not installed; the message says what to install."""


def _works(python: str) -> bool:
    try:
        result = subprocess.run(
            [python, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def find_python312() -> str:
    """A Python 3.12 that runs: PATH first (a pyenv shim may be there and not work), then pyenv."""
    candidates = []
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(on_path)
    roots = [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    with contextlib.suppress(OSError):
        roots.insert(0, subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip())
    for root in filter(None, roots):
        candidates.extend(sorted(glob.glob(f"{root}/versions/3.12.*/bin/python3.12"), reverse=True))
    for python in candidates:
        if _works(python):
            return python
    raise Missing(
        "No working Python 3.12: `sam build` needs one for the python3.12 runtime. Install it "
        "(e.g. `pyenv install 3.12`, or Debian/Ubuntu `apt install python3.12`) so that "
        "`python3.12` is on PATH or under `pyenv root`/versions/3.12.*; tried: "
        + (", ".join(candidates) or "nothing found")
    )


def sam_env(python312: str, **extra: str) -> dict[str, str]:
    """The environment for the SAM CLI: python3.12 first on PATH, no telemetry, a private HOME."""
    home = TOOLS / "sam-home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{Path(python312).parent}:{TOOLS / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "SAM_CLI_TELEMETRY": "0",
        "LANG": "C.UTF-8",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.update(extra)
    return env


def clean_copy(name: str) -> Path:
    """The files of the repo (as git lists them) in a build folder; SAM's own .aws-sam is kept."""
    target = BUILDS / name
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = {f for f in listed.split("\0") if f and (ROOT / f).is_file()}
    if target.exists():
        for path in sorted(target.rglob("*"), reverse=True):
            relative = path.relative_to(target).as_posix()
            if relative.startswith(".aws-sam"):
                continue
            if path.is_file() and relative not in files:
                path.unlink()
    for relative in files:
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, destination)
    return target


def run_sam(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        [str(SAM), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"sam {' '.join(args)} failed ({result.returncode}):\n{output[-6000:]}")
    return output


def lambda_runtime(python312: str) -> Path:
    """What the Lambda Python runtime adds to sys.path besides the layers: boto3 and botocore."""
    stamp = LAMBDA_RUNTIME / ".installed"
    if not stamp.exists():
        shutil.rmtree(LAMBDA_RUNTIME, ignore_errors=True)
        subprocess.run(
            [
                python312,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(LAMBDA_RUNTIME),
                LAMBDA_RUNTIME_BOTO3,
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        stamp.touch()
    return LAMBDA_RUNTIME


def aws_client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]  # any service, by name
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class Build:
    architecture: str
    folder: Path  # the clean copy; the built artifacts are in folder/.aws-sam/build
    output: str

    @property
    def artifacts(self) -> Path:
        return self.folder / ".aws-sam" / "build"


def deploy_env(python312: str, endpoint: str) -> dict[str, str]:
    return sam_env(python312, AWS_ENDPOINT_URL=endpoint, **CREDENTIALS)


if __name__ == "__main__":
    if sys.argv[1:] == ["python312"]:
        try:
            print(find_python312())
        except Missing as exc:
            sys.exit(str(exc))
    else:
        sys.exit("usage: samcli.py python312")
