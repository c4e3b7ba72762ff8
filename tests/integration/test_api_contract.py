"""The HTTP contract kept through the move to Powertools' routers, middleware and validation:
who hears what, in which order, in which words (ingest handler, real SQS and MongoDB servers)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from webhooks_cli.main import main

from conftest import Stack
from support import ADMIN_KEY, Answer, IngestApi, api_event

PARTNERS = "/api/v1/admin/partners"


@pytest.fixture
def call(api: IngestApi) -> Any:
    """Requests as a client sends them: the body as raw text, the admin key only in ``headers``."""

    def send(
        method: str,
        path: str,
        body: str | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
    ) -> Answer:
        return api(method, path, headers=headers, query=query, raw=body, admin=False)

    return send


ADMIN = {"X-Admin-Key": ADMIN_KEY}


def test_an_invalid_body_is_401_for_a_caller_without_the_key_and_400_for_the_operator(call: Any) -> None:
    bad = json.dumps({"name": "", "webhookUrl": "nope", "extra": 1})
    assert call("POST", PARTNERS, bad)[:2] == (401, {"error": "Admin key is required (X-Admin-Key)"})
    assert call("POST", PARTNERS, bad, {"X-Admin-Key": "wrong"})[:2] == (401, {"error": "Invalid admin key"})
    status, body, _ = call("POST", PARTNERS, bad, ADMIN)
    assert status == 400
    assert body["error"].startswith("Invalid request body. Errors: ")
    # each field named as the client sent it, without Powertools' leading "body"
    for expected in (
        "name: String should have at least 1 character",
        "webhookUrl: String should have at least 8",
        "extra: ",
    ):
        assert expected in body["error"], body
    assert "body.name" not in body["error"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("{not json", "Invalid request body. Errors: body: Malformed JSON at line 1 column 2"),
        ('{"name": NaN}', "Invalid request body. Errors: body: NaN is not valid JSON"),
        ('{"name": "x", "webhookUrl": "https://x.example/h", "timeoutMs": 1e999}', "out of range"),
        ("[1, 2]", "Invalid request body. Errors: body: "),
    ],
)
def test_bodies_that_are_not_acceptable_json_are_400_in_the_apis_words(
    call: Any, raw: str, expected: str
) -> None:
    assert call("POST", PARTNERS, raw)[0] == 401  # and nothing about the body before the key
    status, body, _ = call("POST", PARTNERS, raw, ADMIN)
    assert status == 400 and expected in body["error"], body


def test_a_body_that_is_not_utf8_is_400_not_500(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", ADMIN_KEY)
    event = api_event(
        base64.b64encode(b'{"name": "\xff"}').decode(), method="POST", path=PARTNERS, headers=ADMIN
    )
    event["isBase64Encoded"] = True
    result = function("ingest")(event)
    assert (result["statusCode"], json.loads(result["body"])) == (
        400,
        {"error": "Invalid request body. Errors: body: not valid UTF-8"},
    )


def test_query_typos_are_refused_after_the_partner_key(stack: Stack, call: Any) -> None:
    created = stack.store().create("q", "https://q.example/h", ["order.*"])
    path = "/api/v1/deliveries"
    assert call("GET", path, None, {}, {"stauts": "failed"})[0] == 401
    event_key = {"X-API-Key": created.api_key}
    status, body, _ = call("GET", path, None, event_key, {"stauts": "failed"})
    assert (status, body) == (400, {"error": "Invalid query. Errors: stauts: Extra inputs are not permitted"})
    status, body, _ = call("GET", path, None, event_key, {"status": "lost"})
    assert status == 400 and body["error"].startswith("Invalid query. Errors: status: Input should be")
    status, body, _ = call("GET", path, None, event_key, {"limit": "500"})
    assert status == 400 and "limit: Input should be less than or equal to 200" in body["error"]
    status, body, _ = call("GET", path, None, event_key, {"status": "failed", "limit": "5"})
    assert status == 200 and body == {"deliveries": [], "nextCursor": None}


def test_unknown_methods_are_405_with_allow_and_unknown_paths_404(call: Any) -> None:
    status, body, headers = call("PUT", PARTNERS, "{}", ADMIN)
    assert (status, body, headers["Allow"]) == (405, {"error": "Method PUT not allowed"}, "GET, POST")
    assert call("GET", "/api/v1/nothing")[:2] == (404, {"error": "Not found"})


def test_swagger_ui_and_the_generated_document_are_served(call: Any) -> None:
    status, page, headers = call("GET", "/api/v1/docs")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "swagger" in page.lower()
    status, doc, _ = call("GET", "/api/v1/openapi.json")
    assert status == 200 and doc["paths"]["/api/v1/admin/partners"]["post"]["operationId"] == "createPartner"


def test_the_cli_refuses_what_the_api_refuses(
    stack: Stack, call: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_DESTINATIONS", "false")
    body: dict[str, Any] = {"name": "loop", "webhookUrl": "http://127.0.0.1:9/h", "events": ["order.*"]}
    status, refused, _ = call("POST", PARTNERS, json.dumps(body), ADMIN)
    code = main(["partners", "create", "--name", "loop", "--url", body["webhookUrl"], "--events", "order.*"])
    err = capsys.readouterr().err
    assert status == 400 and code != 0
    assert "loopback, private" in refused["error"] and "loopback, private" in err
    assert stack.store().all() == []  # neither created it


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_gets_a_sentence_saying_so(call: Any, content_type: str) -> None:
    assert call("POST", PARTNERS, "name=x", {"Content-Type": content_type})[0] == 401
    status, body, _ = call("POST", PARTNERS, "name=x", {**ADMIN, "Content-Type": content_type})
    expected = (
        f"Invalid request body. Errors: body: send JSON (Content-Type: application/json), not {content_type}"
    )
    assert (status, body) == (400, {"error": expected})
