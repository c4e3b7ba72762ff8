"""What a new user met in the first hour (issue 31: data bugs and friction), one test each."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId

from webhooks.delivery.signing import generate_secret
from webhooks.store.delivery_log import AttemptRecord, DeliveryLog
from webhooks_cli.demo import DemoReceiver
from webhooks_cli.main import main

from conftest import Stack
from runtime_process import WEBHOOKS
from support import api_event


def attempt(event_id: str, partner_id: str, at: datetime) -> AttemptRecord:
    return AttemptRecord(event_id, "order.created", partner_id, 1, "delivered", 200, 5.0, None, None, b"", at)


def test_deliveries_list_is_newest_first_whatever_order_the_log_was_written_in(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    log = DeliveryLog(stack.db)
    base = datetime(2026, 1, 1, 12, 0, 20, tzinfo=UTC)
    at = {name: base + timedelta(milliseconds=ms) for name, ms in [("a", 53), ("b", 48), ("c", 50)]}
    # two deliver invocations ending in the other order than their attempts began
    for names in (["a"], ["b", "c"], ["d1", "d2"]):
        buffer: list[dict[str, Any]] = []
        for name in names:
            log.record(attempt(f"event_{name}", "p1", at.get(name, at["c"])), buffer)  # d1, d2: c's ms
        log.flush(buffer)

    seen: list[str] = []
    cursor: list[str] = []
    while True:
        assert main(["deliveries", "list", "--partner", "p1", "--limit", "2", "--json", *cursor]) == 0
        page = json.loads(capsys.readouterr().out)
        seen += [d["eventId"] for d in page["deliveries"]]
        if not page["nextCursor"]:
            break
        cursor = ["--cursor", page["nextCursor"]]
    # newest first; the three written in the same millisecond by _id, newest written first
    assert seen == ["event_a", "event_d2", "event_d1", "event_c", "event_b"]
    # a cursor whose row has gone (expired) pages on from its id's time, skipping nothing
    gone = str(ObjectId.from_datetime(at["a"]))
    assert main(["deliveries", "list", "--partner", "p1", "--cursor", gone, "--json"]) == 0
    assert [d["eventId"] for d in json.loads(capsys.readouterr().out)["deliveries"]] == seen


def get(function: Any, path: str, context_path: str | None = None) -> tuple[int, dict[str, str], str]:
    """A GET through the ingest handler; ``context_path``: the path as API Gateway saw it."""
    event = api_event(None, method="GET", path=path)
    event["requestContext"]["path"] = context_path or path
    result = function("ingest")(event)
    headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
    return result["statusCode"], {**headers, **(result.get("headers") or {})}, result["body"]


@pytest.mark.parametrize(
    ("requested", "server"), [("/api/v1/openapi.json", "/"), ("/Prod/api/v1/openapi.json", "/Prod")]
)
def test_the_served_document_names_the_server_it_was_served_from(
    stack: Stack, function: Any, requested: str, server: str
) -> None:
    status, _, body = get(function, "/api/v1/openapi.json", requested)
    doc = json.loads(body)
    assert status == 200 and doc["servers"] == [{"url": server}]
    assert "HTTPValidationError" not in body and '"422"' not in json.dumps(
        doc["paths"]["/api/v1/admin/partners"]
    )


def test_swagger_ui_is_served_under_a_csp_that_forbids_framing_and_inline_script(
    stack: Stack, function: Any
) -> None:
    status, headers, page = get(function, "/api/v1/docs")
    csp = headers["Content-Security-Policy"]
    assert status == 200 and "frame-ancestors 'none'" in csp and "script-src 'self';" in csp
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert "<script>" not in page and "<style>" not in page  # no inline script or style
    scripts = re.findall(r'<script src="([^"]+)"', page) + re.findall(r'href="([^"]+\.css)"', page)
    assert scripts == ["docs/swagger-ui-bundle.js", "docs/swagger-init.js", "docs/swagger-ui.css"]
    for asset in scripts:  # relative to the page, the same policy on each
        status, headers, body = get(function, f"/api/v1/{asset}")
        assert status == 200 and body and headers["Content-Security-Policy"] == csp
    assert get(function, "/api/v1/docs/../../console")[0] == 404


def cli(stack: Stack, tmp_path: Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
    """The real `webhooks` command in a process of its own, as a user's shell starts it: the
    stack's endpoints, none of the test run's Powertools settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_")}
    env.update({k: v for k, v in stack.env.items() if not k.startswith("POWERTOOLS_")})
    env["WEBHOOKS_LOCAL_DIR"] = str(tmp_path)  # no running `webhooks local` to find
    return subprocess.Popen(
        [WEBHOOKS, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def test_a_cli_command_prints_its_answer_and_no_log_lines_after_it(stack: Stack, tmp_path: Path) -> None:
    partner = stack.store().create("quiet", "https://quiet.example/h", ["order.*"]).partner
    process = cli(stack, tmp_path, "test", "--partner", partner.id)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert json.loads(out)["enqueued"]  # stdout: the answer alone
    assert err == ""  # no INFO line ("deliveries enqueued by an operator"), no service_undefined


def test_a_reader_that_goes_away_ends_the_command_without_a_traceback(stack: Stack, tmp_path: Path) -> None:
    for n in range(3):
        stack.store().create(f"piped-{n}", "https://piped.example/h", ["order.*"])
    process = cli(stack, tmp_path, "partners", "list", "--json")
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # `| head` that has read its lines: gone before the command writes
    err = process.stderr.read()
    process.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert process.returncode == 141


def test_the_demo_receiver_writes_each_webhook_whole_so_no_log_line_lands_inside_it() -> None:
    writes: list[str] = []

    class Terminal:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    secret = generate_secret()
    body = b'{"eventId":"event_1","eventType":"order.created","timestamp":"t","data":{}}'
    headers = {"X-Recart-Event-Type": "order.created", "X-Recart-Event-Id": "event_1"}
    headers["X-Recart-Signature-256"] = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    DemoReceiver(secret, Terminal()).show(body, headers)
    [text] = writes  # one write: a line another thread logs comes before or after it
    assert text.endswith(body.decode() + "\n") and text.startswith("[demo receiver] order.created event_1")


def test_human_delivery_lines_show_the_partner_ids_tail_which_differs_for_partners_made_together() -> None:
    from webhooks.log_format import HumanFormatter

    ids = [str(ObjectId()) for _ in range(2)]  # the same second: the same first 8 hex digits
    shown = [
        HumanFormatter().serialize(
            {"level": "INFO", "message": "delivery attempt", "service": "webhooks", "event_id": "event_1",
             "partner_id": pid, "attempt": 1, "status": 200, "latency_ms": 3, "outcome": "delivered"}
        )
        for pid in ids
    ]  # fmt: skip
    assert [line.split("partner ")[1].split()[0] for line in shown] == ["…" + pid[-8:] for pid in ids]
    assert all(" deliver " in line and "service" not in line for line in shown)


def test_a_dead_letter_is_settled_only_by_a_delivery_after_it_was_dead_lettered(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    dlq = stack.url("DELIVERY_DLQ_URL")
    for event_id in ("event_replayed", "event_delivered_before", "event_other_partner"):
        stack.sqs.send_message(
            QueueUrl=dlq,
            MessageBody="{}",
            MessageAttributes={
                "eventId": {"DataType": "String", "StringValue": event_id},
                "partnerId": {"DataType": "String", "StringValue": "p1"},
            },
        )
    log, now = DeliveryLog(stack.db), datetime.now(UTC)
    buffer: list[dict[str, Any]] = []
    log.record(attempt("event_replayed", "p1", now + timedelta(seconds=5)), buffer)  # a replay, later
    log.record(attempt("event_delivered_before", "p1", now - timedelta(hours=1)), buffer)  # then failed again
    log.record(attempt("event_other_partner", "p2", now + timedelta(seconds=5)), buffer)  # someone else's
    log.flush(buffer)

    assert main(["dlq", "list", "--json"]) == 0
    listed = {d["eventId"] for d in json.loads(capsys.readouterr().out)}
    assert listed == {"event_delivered_before", "event_other_partner"}
    assert main(["dlq", "redrive", "--all"]) == 0
    assert capsys.readouterr().out.strip() == "redrove 2 deliveries"  # the settled one is gone already


def test_every_documented_route_documents_the_400_it_answers_to_an_unknown_parameter(
    stack: Stack, function: Any
) -> None:
    from webhooks.api import openapi_document

    error = {"$ref": "#/components/schemas/ErrorResponse"}
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"]["400"]["content"]["application/json"]["schema"] == error, (
                method,
                path,
            )
    event = api_event(None, method="GET", path="/api/v1/health")
    event["queryStringParameters"] = {"verbose": "1"}
    result = function("ingest")(event)
    assert result["statusCode"] == 400 and json.loads(result["body"])["error"].startswith("Invalid query")
