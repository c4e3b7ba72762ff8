"""Cold starts as Lambda's python3.12 runtime has them: each function against a bare boto3 client.

Each sample is a fresh ``python3.12 -S -E`` process (no site-packages, no PYTHON* variables)
whose ``sys.path`` is what Lambda gives a function: its folder (``/var/task``), the common
layer (``/opt/python``: the layer's requirements, installed with pip for 3.12 into
``.bench-cache/``, the layer's code and the tracing layer's X-Ray SDK), then the runtime's
boto3. Tracing is off (``POWERTOOLS_TRACE_DISABLED=true``) unless a row says it is on. It measures:

- baseline: ``import boto3; boto3.client("sqs")`` (what any function pays to talk to SQS);
- each function's init: ``import app`` (module-level settings, clients, the API's routes);
- ingest's first request too: the API Gateway event of ``events/api-post-events.json`` with a
  real partner's key, against the moto SQS server and SecantusDB this bench starts
  (the key lookup in MongoDB, the SendMessage).

Best of 5 per figure, rounds interleaved. Init is counted in CPU time (all threads of the
process): on a shared machine a process waiting for a core inflates wall time, not CPU time,
and loading modules from page-cached files is CPU-bound, so on a quiet machine (and on
Lambda) the two agree; the wall time is printed beside it. The first request is wall time
(it waits on the servers). Target (issue 34): each function's cold start at
most 1.5x the baseline's, ingest's counted as init plus its first request. Exits 1 on a miss.
The interpreter's own start-up (the same for all) is not in the figures.

Informational rows, not part of the target:
- ingest on a provisioned instance: provisioned concurrency (``IngestProvisionedConcurrency``)
  runs init before traffic, so a request pays only the first request's cost (SnapStart cannot
  be measured off AWS);
- the floor: the prescribed libraries alone, as little of each as a function can use (queue:
  Powertools' Logger, Metrics and batch utility, boto3's SQS client, pydantic with one model,
  pymongo's MongoClient; API: the same with Powertools' REST resolver, validation on, one
  route, instead of the batch utility). No function on these libraries starts faster;
- tracing on (``Tracing: Active``: the X-Ray SDK loaded and botocore/pymongo patched);
- the layers without ``.pyc`` files, as ``sam build`` shipped them until 2026-12-05 (the
  common layer's python3.12 build method wrote none; the tracing layer was installed with
  ``--no-compile``): Lambda's ``/opt`` is read-only, so every module of the layers is
  compiled from source at every cold start; tracing off and on. With ``--sam-build`` the
  rows load a real build instead (below).

``--sam-build DIR`` (an x86_64 ``sam build`` output, e.g. ``.aws-sam/build`` after
``sam build --parameter-overrides Architecture=x86_64``) makes the as-built rows load the layers
and functions exactly as that build made them, with the .pyc it ships (layers/*/Makefile
compile them since 2026-12-05), instead of copies without .pyc.

``--importtime FUNCTION`` prints that function's slowest imports (``-X importtime``) instead.

Run: .venv/bin/python bench/bench_cold_start.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, handler_servers

TARGET = 1.5
FUNCTIONS = ["ingest", "dispatch", "deliver"]
CACHE = ROOT / ".bench-cache" / "cold-start"
LAYER_DEPS = CACHE / "opt-python"  # the common layer's requirements
TRACING = CACHE / "tracing-python"  # the tracing layer (layers/tracing/Makefile)
RUNTIME = CACHE / "runtime"  # boto3 as the Lambda runtime provides it
AS_BUILT = CACHE / "as-built"  # copies without .pyc, read with -B
RUNTIME_BOTO3 = "boto3==1.44.18"

# Runs in the python3.12 process: argv[1] is a JSON job. Prints one JSON line of timings (ms).
CHILD = r"""
import json, sys, time
job = json.loads(sys.argv[1])
sys.path[:0] = job["path"]
started, cpu = time.perf_counter(), time.process_time()
if job["what"] == "baseline":
    import boto3
    boto3.client("sqs")
elif job["what"].startswith("floor"):
    # the prescribed libraries alone, as the functions import them (Powertools' batch first)
    if job["what"] == "floor-queue":
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
    from aws_lambda_powertools import Logger, Metrics
    import boto3, pydantic, pymongo
    class Model(pydantic.BaseModel):
        value: int
    Logger(service="floor"), Metrics(namespace="floor")
    boto3.client("sqs")
    pymongo.MongoClient("mongodb://127.0.0.1:9", connect=False)
    if job["what"] == "floor-api":
        from aws_lambda_powertools.event_handler import APIGatewayRestResolver
        api = APIGatewayRestResolver(enable_validation=True)
        @api.post("/events")
        def post(body: Model) -> Model:
            return body
else:
    import app
out = {"init": (time.perf_counter() - started) * 1000, "init_cpu": (time.process_time() - cpu) * 1000}
if job.get("event"):
    class Context:
        function_name = "ingest"
        function_version = "$LATEST"
        memory_limit_in_mb = 512
        aws_request_id = "cold-start-bench"
        invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:ingest"
        log_group_name = "/aws/lambda/ingest"
        log_stream_name = "bench"
        def get_remaining_time_in_millis(self):
            return 25000
    started = time.perf_counter()
    response = app.lambda_handler(job["event"], Context())
    out["first_request"] = (time.perf_counter() - started) * 1000
    out["status"] = response["statusCode"]
print(json.dumps(out))
"""


def python312() -> str:
    """The pyenv 3.12 interpreter itself (the shim alone does not run it)."""
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
    found = sorted(glob.glob(f"{root or Path.home() / '.pyenv'}/versions/3.12.*/bin/python3.12"))
    if not found:
        sys.exit("bench_cold_start: needs a pyenv Python 3.12 (`pyenv install 3.12`)")
    return found[-1]


def pip_install(python: str, target: Path, *args: str, env: dict[str, str] | None = None) -> None:
    """Install once; the marker file says it completed (an interrupted install is redone) and
    for what: a changed requirements file installs afresh (no package it dropped stays)."""
    marker = target / ".installed"
    wanted = "\n".join([*args, *(Path(a).read_text() for a in args if a.endswith(".txt"))])
    if marker.exists() and marker.read_text() == wanted:
        return
    shutil.rmtree(target, ignore_errors=True)
    command = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"]
    subprocess.run([*command, str(target), *args], check=True, env=env)
    marker.write_text(wanted)


def prepare(python: str, sam_build: Path | None = None) -> None:
    pip_install(python, LAYER_DEPS, "-r", str(ROOT / "layers/common/requirements.txt"))
    pip_install(python, RUNTIME, RUNTIME_BOTO3)
    # as layers/tracing/Makefile builds it (no botocore, pure-Python wrapt); compiled here
    # like the others, the as-built row drops every .pyc
    pip_install(
        python,
        TRACING,
        "--no-deps",
        "--no-binary",
        "wrapt",
        "-r",
        str(ROOT / "layers/tracing/requirements.txt"),
        env={**os.environ, "WRAPT_INSTALL_EXTENSIONS": "false"},
    )
    # the as-built copies: the layer's code changes, so they are made afresh each run
    shutil.rmtree(AS_BUILT, ignore_errors=True)
    no_pyc = shutil.ignore_patterns("__pycache__", "*.pyc")
    if sam_build:  # as shipped: the build's own files, its .pyc included (the package is in the layer)
        for source, name in [
            (sam_build / "CommonLayer" / "python", "opt-python"),
            (sam_build / "TracingLayer" / "python", "tracing-python"),
            *[(sam_build / f"{f.capitalize()}Function", f) for f in FUNCTIONS],
        ]:
            shutil.copytree(source, AS_BUILT / name)
        return
    for source, name in [
        (LAYER_DEPS, "opt-python"),
        (ROOT / "layers/common", "layer-code"),
        (TRACING, "tracing-python"),
        *[(ROOT / "functions" / f, f) for f in FUNCTIONS],
    ]:
        shutil.copytree(source, AS_BUILT / name, ignore=no_pyc)


def sys_path(function: str | None, as_built: bool) -> list[str]:
    """Lambda's order: /var/task, /opt/python (both layers merged: the template attaches the
    tracing layer to every function; it costs only if imported), then the runtime's packages."""
    if as_built:
        opt = [AS_BUILT / "opt-python", AS_BUILT / "layer-code", AS_BUILT / "tracing-python"]
        task = [AS_BUILT / function] if function in FUNCTIONS else []
    else:
        opt = [LAYER_DEPS, ROOT / "layers/common", TRACING]
        task = [ROOT / "functions" / function] if function in FUNCTIONS else []
    return [str(p) for p in [*task, *opt, RUNTIME]]


def run(python: str, job: dict[str, Any], env: dict[str, str], flags: tuple[str, ...] = ()) -> dict[str, Any]:
    result = subprocess.run(
        [python, "-S", "-E", *flags, "-c", CHILD, json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
        cwd=job["path"][0],
        timeout=120,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"init"')]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{job['what']} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    found: dict[str, Any] = json.loads(lines[-1])
    return found


def lambda_env(function: str, tracing: bool) -> dict[str, str]:
    """The variables Lambda sets (the bench's servers' URLs come from handler_servers)."""
    env = {
        **os.environ,
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function),
        "POWERTOOLS_SERVICE_NAME": f"webhooks-{function}",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true",
        # the X-Ray SDK sends its segments here (nobody listens; UDP on loopback)
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    env.pop("PYTHONPATH", None)
    return env


def ingest_event(api_key: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((ROOT / "events/api-post-events.json").read_text())
    event["headers"]["X-API-Key"] = api_key
    event["multiValueHeaders"]["X-API-Key"] = [api_key]
    return event


def importtime(python: str, function: str, tracing: bool, top: int) -> None:
    with handler_servers():
        job = {"what": function, "path": sys_path(function, as_built=False)}
        env = lambda_env(function, tracing)
        run(python, job, env)  # compile what is not compiled yet
        result = subprocess.run(
            [python, "-S", "-E", "-X", "importtime", "-c", CHILD, json.dumps(job)],
            capture_output=True,
            text=True,
            env=env,
            cwd=job["path"][0],
        )
    rows: list[tuple[int, int, str]] = []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "self" not in line:
            self_us, cumulative_us, module = (part.strip() for part in line[len("import time:") :].split("|"))
            rows.append((int(cumulative_us), int(self_us), module))
    for total, own, name in sorted(rows, reverse=True)[:top]:
        print(f"{total / 1000:8.1f} ms cumulative {own / 1000:7.1f} ms self  {name}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--importtime", choices=FUNCTIONS)
    parser.add_argument("--tracing", action="store_true", help="with --importtime: tracing on")
    parser.add_argument("--top", type=int, default=45, help="with --importtime: how many imports")
    parser.add_argument("--sam-build", type=Path, help="the as-built rows from this x86_64 sam build output")
    args = parser.parse_args()
    python = python312()
    prepare(python, args.sam_build)
    built_label = "as built (sam build)" if args.sam_build else "as built (no .pyc)"
    if args.importtime:
        importtime(python, args.importtime, args.tracing, args.top)
        return 0

    with handler_servers():
        from webhooks.config import load_settings
        from webhooks.partners.store import PartnerStore
        from webhooks.store.mongo import get_database

        store = PartnerStore(get_database(load_settings()))
        store.ensure_indexes()
        event = ingest_event(store.create("cold-start", "https://bench.example/h", ["order.created"]).api_key)

        # (label, function, tracing, as built): the first four are the target's
        cases = [
            ("boto3.client('sqs')", None, False, False),
            *[(f, f, False, False) for f in FUNCTIONS],
            *[(f"floor: {kind} function", f"floor-{kind}", False, False) for kind in ("queue", "api")],
            *[(f"{f}, tracing on", f, True, False) for f in FUNCTIONS],
            *[(f"{f}, {built_label}", f, False, True) for f in FUNCTIONS],
            *[(f"{f}, as built, tracing on", f, True, True) for f in FUNCTIONS],
        ]
        best: dict[str, dict[str, float]] = {}
        for _label, function, tracing, as_built in cases:  # compile once, outside the samples
            if not as_built:
                warm: dict[str, Any] = {"what": function or "baseline", "path": sys_path(function, as_built)}
                run(python, warm, lambda_env(function or "baseline", tracing))
        for _ in range(args.rounds):
            for label, function, tracing, as_built in cases:
                job: dict[str, Any] = {"what": function or "baseline", "path": sys_path(function, as_built)}
                if function == "ingest":
                    job["event"] = event
                found = run(
                    python, job, lambda_env(function or "baseline", tracing), ("-B",) if as_built else ()
                )
                if "status" in found and found.pop("status") != 202:
                    raise RuntimeError(f"{label}: the first request was not accepted")
                found["total"] = found["init_cpu"] + found.get("first_request", 0.0)
                kept = best.setdefault(label, found)
                if found["total"] < kept["total"]:
                    best[label] = found

    failed = False
    for label, *_ in cases:
        figures = best[label]
        baseline = best["boto3.client('sqs')"]
        ratio = figures["total"] / baseline["total"]
        detail = f"init CPU {figures['init_cpu']:.0f} ms, wall {figures['init']:.0f} ms" + (
            f"; first request {figures['first_request']:.0f} ms" if "first_request" in figures else ""
        )
        in_target = label in FUNCTIONS
        verdict = ""
        if in_target:
            verdict = "  (target 1.5x: " + ("met)" if ratio <= TARGET else "MISSED)")
            failed |= ratio > TARGET
        print(f"{label:34} {figures['total']:6.0f} ms  {ratio:4.2f}x  ({detail}){verdict}")
    baseline_ms = best["boto3.client('sqs')"]["total"]
    # provisioned concurrency (the template's IngestProvisionedConcurrency) runs init before
    # any request arrives: what a request still pays on such an instance is the first one's
    first = best["ingest"]["first_request"]
    print(
        f"ingest on a provisioned instance (init before traffic): its first request {first:.0f} ms "
        f"({first / baseline_ms:.2f}x)"
    )
    for function in FUNCTIONS:  # what the functions add to the libraries they stand on
        floor = best[f"floor: {'api' if function == 'ingest' else 'queue'} function"]["total"]
        above = best[function]["total"] - floor
        print(f"{function} above its floor: {above:+.0f} ms ({above / baseline_ms:+.2f}x of the baseline)")
    print(
        f"best of {args.rounds} fresh python3.12 -S -E processes each; ratios against the same-run baseline"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
