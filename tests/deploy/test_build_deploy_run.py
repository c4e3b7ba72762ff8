"""`sam build && sam deploy` as a user runs them, and the built artifacts run as Lambda runs them.

- build: a clean copy of the repo, `sam build` with its samconfig; the layer holds the
  package and every runtime dependency, for the template's architecture, without boto3.
- deploy: `sam deploy` with the repo's samconfig against moto's S3 (only the artifact
  bucket differs from the user's config). moto's CloudFormation cannot fetch a template
  from an S3 URL on a local endpoint, so CreateChangeSet is the one step that fails here;
  everything CloudFormation would deploy (the template and the zips it names) is uploaded
  before it and checked.
- run: the x86_64 build's zips unpacked as Lambda lays them out, each handler imported by
  Python 3.12 with nothing else on sys.path, driven through a whole delivery against
  moto's SQS and SSM and SecantusDB, ending in a signed POST.
"""

from __future__ import annotations

import io
import json
import re
import socket
import subprocess
import sys
import threading
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymongo import MongoClient
from standardwebhooks.webhooks import Webhook

from webhooks.partners.store import PartnerStore
from webhooks_cli.topology import create_queues

from deploy.samcli import Build, aws_client, deploy_env, lambda_runtime, run_sam
from support import CfnLoader, Receiver, api_event, receive, sqs_event, wait_until

ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("lambda_driver.py")
FUNCTIONS = {"IngestFunction": "ingest", "DispatchFunction": "dispatch", "DeliverFunction": "deliver"}
LAYERS = ("CommonLayer", "TracingLayer")


def requirement_names(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(re.split(r"[\[<>=!~ ]", line, maxsplit=1)[0])
    return names


def distributions(folder: Path) -> set[str]:
    return {
        re.sub(r"[-_.]+", "-", d.name.removesuffix(".dist-info").rsplit("-", 1)[0]).lower()
        for d in folder.glob("*.dist-info")
    }


# Python 3.12's bytecode magic number, and the pyc header flags of PEP 552: bit 0 hash-based,
# bit 1 check_source. 0b01: hash-based, never checked against the source, so a read-only /opt
# (Lambda's) never recompiles and the zip's file times do not matter.
PY312_MAGIC = (3531).to_bytes(2, "little") + b"\r\n"
UNCHECKED_HASH = 0b01


def uncompiled(package: Path) -> list[str]:
    """The modules under ``package`` without a python3.12 unchecked-hash .pyc beside them."""
    missing = []
    for source in package.rglob("*.py"):
        pyc = source.parent / "__pycache__" / f"{source.stem}.cpython-312.pyc"
        header = pyc.read_bytes()[:8] if pyc.is_file() else b""
        if header[:4] != PY312_MAGIC or int.from_bytes(header[4:8], "little") != UNCHECKED_HASH:
            missing.append(str(source.relative_to(package.parent)))
    return missing


def test_sam_build_ships_both_layers_compiled_for_python312_with_unchecked_hash_pyc(
    arm64_build: Build,
) -> None:
    common = arm64_build.artifacts / "CommonLayer" / "python"
    tracing = arm64_build.artifacts / "TracingLayer" / "python"
    for package in (common / "webhooks", common / "pydantic", common / "pymongo", tracing / "aws_xray_sdk"):
        assert list(package.rglob("*.py")), package
        assert uncompiled(package) == []


def test_sam_build_of_a_clean_copy_puts_the_package_and_every_dependency_in_the_layer(
    arm64_build: Build,
) -> None:
    layer = arm64_build.artifacts / "CommonLayer" / "python"
    assert (layer / "webhooks" / "__init__.py").is_file()
    # the console's static files ship with the layer (served by the ingest function at /console)
    shipped = {p.name for p in (layer / "webhooks" / "console").iterdir()}
    assert {"index.html", "app.js", "console.css"} <= shipped
    # every module of every subpackage, as it is in the source tree
    source = ROOT / "layers" / "common" / "webhooks"
    modules = {p.relative_to(source) for p in source.rglob("*.py") if "__pycache__" not in p.parts}
    assert {p.relative_to(layer / "webhooks") for p in (layer / "webhooks").rglob("*.py")} >= modules
    assert (layer / "webhooks" / "delivery" / "deliverer.py").read_text() == (
        source / "delivery" / "deliverer.py"
    ).read_text()
    installed = distributions(layer)
    for name in requirement_names(ROOT / "layers" / "common" / "requirements.txt"):
        assert re.sub(r"[-_.]+", "-", name).lower() in installed, f"{name} missing from the layer"
    # compiled for the Lambda runtime and the template's default architecture
    assert list((layer / "pydantic_core").glob("_pydantic_core.cpython-312-aarch64-linux-gnu.so"))
    # the runtime provides boto3/botocore; a copy here would shadow it
    assert not {"boto3", "botocore", "s3transfer"} & installed
    tracing = arm64_build.artifacts / "TracingLayer" / "python"
    assert {"aws-xray-sdk", "wrapt"} <= distributions(tracing)
    assert not list(tracing.rglob("*.so")), "the tracing layer must serve both architectures"
    for logical_id, name in FUNCTIONS.items():
        assert (arm64_build.artifacts / logical_id / "app.py").read_text() == (
            ROOT / "functions" / name / "app.py"
        ).read_text()


def sam_deploy(build: Build, python312: str, endpoint: str, bucket: str) -> dict[str, Any]:
    """`sam deploy` as the README says, artifacts to ``bucket``; returns the uploaded template."""
    s3 = aws_client("s3", endpoint)
    s3.create_bucket(Bucket=bucket)
    args = ["deploy", "--no-resolve-s3", "--s3-bucket", bucket, "--no-confirm-changeset"]
    try:
        run_sam(args, build.folder, deploy_env(python312, endpoint))
    except AssertionError as exc:  # the emulator's CloudFormation, see the module docstring
        message = str(exc)
        assert "Initiating deployment" in message and "CreateChangeSet" in message, message
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    [template_key] = [k for k in keys if k.endswith(".template")]
    body = s3.get_object(Bucket=bucket, Key=template_key)["Body"].read()
    return yaml.load(body, Loader=CfnLoader)  # type: ignore[no-any-return]


def uploaded_zip(endpoint: str, uri: str) -> zipfile.ZipFile:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    body = aws_client("s3", endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()
    return zipfile.ZipFile(io.BytesIO(body))


def test_sam_deploy_with_the_repo_samconfig_uploads_the_built_layer_and_functions(
    arm64_build: Build, python312: str, aws_emulator: str
) -> None:
    template = sam_deploy(arm64_build, python312, aws_emulator, "artifacts-arm64")
    resources = template["Resources"]
    layer = uploaded_zip(aws_emulator, resources["CommonLayer"]["Properties"]["ContentUri"]).namelist()
    assert "python/webhooks/__init__.py" in layer
    assert "python/webhooks/console/index.html" in layer
    assert "python/webhooks/__pycache__/__init__.cpython-312.pyc" in layer  # the zip keeps the .pyc
    assert any(n.startswith("python/pydantic_core/") and n.endswith("aarch64-linux-gnu.so") for n in layer)
    assert not any(n.startswith(("webhooks/", "python/boto3/", "python/botocore/")) for n in layer)
    tracing = uploaded_zip(aws_emulator, resources["TracingLayer"]["Properties"]["ContentUri"]).namelist()
    assert "python/aws_xray_sdk/__init__.py" in tracing
    for logical_id in FUNCTIONS:
        names = uploaded_zip(aws_emulator, resources[logical_id]["Properties"]["CodeUri"]).namelist()
        assert "app.py" in names
        assert not any(n.startswith(("webhooks/", "python/")) for n in names)


class XRayDaemon:
    """A UDP socket where the X-Ray SDK sends its (sub)segments, as to Lambda's daemon."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.documents: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except OSError:
                continue
            header, _, document = data.decode().partition("\n")
            self.documents.append(json.loads(document))

    def subsegments(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def walk(doc: dict[str, Any]) -> None:
            found.append(doc)
            for child in doc.get("subsegments", []):
                walk(child)

        for doc in self.documents:
            walk(doc)
        return found

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class Lambda:
    """The unpacked artifacts, and one cold start per call as Lambda would make."""

    def __init__(self, root: Path, python312: str, runtime: Path, env: dict[str, str]) -> None:
        self.root = root
        self.python312 = python312
        self.runtime = runtime
        self.env = env

    def invoke(self, function: str, event: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
        request = self.root / f"{function}-request.json"
        result = self.root / f"{function}-result.json"
        task_root = self.root / "task" / function
        request.write_text(
            json.dumps(
                {
                    "task_root": str(task_root),
                    "opt_python": str(self.root / "opt" / "python"),
                    "runtime": str(self.runtime),
                    "handler": "app.lambda_handler",
                    "function_name": f"webhooks-{function}",
                    "timeout": timeout,
                    "event": event,
                }
            )
        )
        env = {
            **self.env,
            "POWERTOOLS_SERVICE_NAME": function,
            "AWS_LAMBDA_FUNCTION_NAME": f"webhooks-{function}",
            "LAMBDA_TASK_ROOT": str(task_root),
        }
        done = subprocess.run(
            [self.python312, "-S", "-E", str(DRIVER), str(request), str(result)],
            env=env,
            cwd=task_root,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        return json.loads(result.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def unpacked(x86_64_build: Build, python312: str, aws_emulator: str, tmp_path: Path) -> Path:
    """The x86_64 zips as uploaded by `sam deploy`, unpacked: opt/ (layers) and task/<function>/."""
    template = sam_deploy(x86_64_build, python312, aws_emulator, "artifacts-x86-64")
    resources = template["Resources"]
    for layer in LAYERS:
        uploaded_zip(aws_emulator, resources[layer]["Properties"]["ContentUri"]).extractall(tmp_path / "opt")
    for logical_id, name in FUNCTIONS.items():
        uploaded_zip(aws_emulator, resources[logical_id]["Properties"]["CodeUri"]).extractall(
            tmp_path / "task" / name
        )
    return tmp_path


def test_the_built_x86_64_artifacts_deliver_a_signed_webhook_under_python312(
    unpacked: Path, python312: str, aws_emulator: str, mongo_uri: str
) -> None:
    sqs = aws_client("sqs", aws_emulator)
    queues = create_queues(sqs, f"art{uuid.uuid4().hex[:8]}-")
    db_name = f"artifacts_{uuid.uuid4().hex[:10]}"
    parameter = f"/webhooks-{db_name}/mongo-uri"
    aws_client("ssm", aws_emulator).put_parameter(Name=parameter, Value=mongo_uri, Type="SecureString")
    client: MongoClient[Any] = MongoClient(mongo_uri, tz_aware=True)
    receiver = Receiver()
    daemon = XRayDaemon()
    try:
        store = PartnerStore(client[db_name], cache_ttl=0)
        store.ensure_indexes()
        created = store.create("artifact-partner", receiver.url, ["order.*"])
        env = {
            "PATH": "/usr/bin:/bin",
            "AWS_ENDPOINT_URL": aws_emulator,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            # the connection string comes from SSM, as in the template
            "MONGO_URI_PARAMETER": parameter,
            "MONGO_DB_NAME": db_name,
            "ALLOW_PRIVATE_DESTINATIONS": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "Webhooks",
            # as the template sets it for Tracing=Active (the default is Disabled)
            "POWERTOOLS_TRACE_DISABLED": "false",
            "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
            **queues,
        }
        runtime = Lambda(unpacked, python312, lambda_runtime(python312), env)

        body = json.dumps([{"eventType": "order.created", "data": {"orderId": "A-1", "note": "naïve"}}])
        ingest = runtime.invoke("ingest", api_event(body, created.api_key))
        assert ingest["result"]["statusCode"] == 202, ingest
        event_id = json.loads(ingest["result"]["body"])["results"][0]["eventId"]
        opt = str(unpacked / "opt" / "python")
        assert ingest["python"][:2] == [3, 12]
        assert ingest["modules"]["webhooks"].startswith(opt)
        assert ingest["modules"]["pydantic_core"].startswith(opt)
        assert ingest["modules"]["boto3"].startswith(str(lambda_runtime(python312)))

        envelopes = receive(sqs, queues["EVENTS_QUEUE_URL"], 1)
        dispatch = runtime.invoke("dispatch", sqs_event(envelopes, queues["EVENTS_QUEUE_URL"]))
        assert dispatch["result"] == {"batchItemFailures": []}

        deliveries = receive(sqs, queues["DELIVERY_QUEUE_URL"], 1)
        deliver = runtime.invoke("deliver", sqs_event(deliveries, queues["DELIVERY_QUEUE_URL"]), timeout=60)
        assert deliver["result"] == {"batchItemFailures": []}
        assert deliver["modules"]["aws_xray_sdk"].startswith(opt)

        [got] = receiver.wait_for(1)
        payload = Webhook(created.secret_key).verify(got.body, got.headers)
        assert payload["eventId"] == event_id and payload["data"] == {"orderId": "A-1", "note": "naïve"}
        assert "X-Amzn-Trace-Id" not in got.headers  # the trace header never reaches a partner

        # the Tracer recorded the POST with the event id (from a worker thread), the SQS and
        # SSM calls and the MongoDB commands, each under its function's handler; the daemon
        # reads the datagrams on a thread of its own, so wait for the deliver step's POST there
        wait_until(lambda: any(str(s.get("name")).endswith("Deliverer._post") for s in daemon.subsegments()))
        subsegments = daemon.subsegments()
        posts = [s for s in subsegments if str(s.get("name")).endswith("Deliverer._post")]
        assert [p.get("annotations", {}).get("event_id") for p in posts] == [event_id], subsegments
        names = {s.get("name") for s in subsegments}
        assert {"sqs", "ssm", "## lambda_handler"} <= names, names
        commands = {s.get("annotations", {}).get("mongodb_command_name") for s in subsegments}
        assert {"find", "insert"} <= commands, commands
    finally:
        daemon.close()
        receiver.close()
        client.drop_database(db_name)
        client.close()
        for url in queues.values():
            sqs.delete_queue(QueueUrl=url)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
