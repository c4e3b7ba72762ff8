"""`make test-localstack`: the integration and e2e suites against LocalStack in host mode.

Starts LocalStack (its own Python 3.13 venv, `.venv-localstack`, no Docker, no auth token)
on a free 127.0.0.1 port with its data in a temporary folder, waits for its health endpoint,
runs pytest with AWS_ENDPOINT_URL at it (WEBHOOKS_TEST_TARGET=localstack: `webhooks local`
runtimes in the e2e suite use it too, each with queues of its own), then stops it by PID.
Tests that need an SQS server they can stop or slow down start moto's for themselves.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK_PYTHON = ROOT / ".venv-localstack" / "bin" / "python"
SERVICES = "sqs,s3,ssm,iam,sts,cloudwatch,logs"
sys.path.insert(0, str(ROOT / "cli"))

from webhooks_cli.servers import _die_with_parent, free_port  # noqa: E402


def start(data: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(data),
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "FILESYSTEM_ROOT": str(data),
        "CONFIG_DIR": str(data / "config"),
        "OVERRIDE_IN_DOCKER": "0",  # these machines carry Docker's marker file
        "DISABLE_EVENTS": "1",
        "DNS_ADDRESS": "0",
        "SERVICES": SERVICES,
    }
    log = open(data / "localstack.log", "wb")  # noqa: SIM115 - kept open for the process's life
    return subprocess.Popen(
        [str(LOCALSTACK_PYTHON), "-m", "localstack.runtime.main"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"LocalStack exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/_localstack/health", timeout=2) as response:
                services: dict[str, str] = json.loads(response.read())["services"]
                if services.get("sqs") in ("available", "running"):
                    return services
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"LocalStack did not answer on {url} within {timeout:g} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def main() -> int:
    if not LOCALSTACK_PYTHON.exists():
        raise SystemExit("no .venv-localstack: run `make test-localstack` (it creates it)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="localstack-") as folder:
        data = Path(folder)
        started = time.monotonic()
        process = start(data, port)
        try:
            services = wait_healthy(url, process)
            print(f"LocalStack up at {url} in {time.monotonic() - started:.1f} s: sqs {services['sqs']}")
            env = {
                **os.environ,
                "AWS_ENDPOINT_URL": url,
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "test",
                "AWS_SECRET_ACCESS_KEY": "test",
                "WEBHOOKS_TEST_TARGET": "localstack",
            }
            suites = [a for a in sys.argv[1:] if a.startswith("tests/")] or ["tests/integration", "tests/e2e"]
            options = [a for a in sys.argv[1:] if not a.startswith("tests/")]
            argv = [sys.executable, "-m", "pytest", *suites, "-rs", *options]
            return subprocess.call(argv, env=env, cwd=ROOT)
        finally:
            stop(process)
            if process.returncode not in (0, -signal.SIGTERM):
                print((data / "localstack.log").read_text()[-3000:], file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
