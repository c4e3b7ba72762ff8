import json
from pathlib import Path

from webhooks.api import openapi_document

EVENTS_PATH = "/api/v1/events"

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_committed_document_matches_what_the_app_generates() -> None:
    assert json.loads(COMMITTED.read_text()) == openapi_document(), (
        "run `make openapi` and commit docs/openapi.json"
    )


def test_the_document_describes_the_contract() -> None:
    doc = openapi_document()
    post = doc["paths"][EVENTS_PATH]["post"]
    assert set(post["responses"]) >= {"202", "207", "400", "401", "413", "422", "500", "503"}
    assert post["requestBody"]["content"]["application/json"]["schema"]["items"] == {
        "$ref": "#/components/schemas/EventIn"
    }
    event_in = doc["components"]["schemas"]["EventIn"]
    assert event_in["required"] == ["eventType", "data"]
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }


def test_the_generated_document_is_valid_openapi_with_unique_operation_ids() -> None:
    from openapi_spec_validator import validate

    doc = openapi_document()
    validate(json.loads(json.dumps(doc)))
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids)) == 49, sorted(ids)


def test_every_route_the_app_serves_is_documented_with_its_credential() -> None:
    from webhooks.api import app

    doc = openapi_document()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/v1/admin"):
                assert operation["security"] == [{"AdminKey": []}], (method, path)
                assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
            if path.startswith("/api/v1/endpoints"):  # the partner's own: its key or a portal token
                assert operation["security"] == [{"ApiKey": []}, {"PortalToken": []}], (method, path)
                assert {"401", "404", "429"} <= set(operation["responses"]) or path == "/api/v1/endpoints"
                assert operation["tags"] == ["self-service"], (method, path)
            # invalid input is a 400 with the API's error body, never Powertools' default 422
            assert "HTTPValidationError" not in json.dumps(operation), (method, path)
    served = {
        (route.method.lower(), route.openapi_path) for route in app._static_routes + app._dynamic_routes
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    # Swagger UI, its files and the console's are pages, not API operations
    pages = ("/api/v1/docs", "/console")
    assert documented == {(m, p) for m, p in served if not p.startswith(pages)}


def _documented(answer: dict[str, object]) -> bool:
    """An answer with a schema: a model ($ref) or an object with its properties, not the bare
    ``{"type": "object"}`` Powertools writes for a route returning ``dict[str, Any]``."""
    schema = answer.get("content", {}).get("application/json", {}).get("schema", {})  # type: ignore[attr-defined]
    return "$ref" in schema or "properties" in schema


def test_at_least_95_percent_of_success_answers_have_a_schema() -> None:
    doc = openapi_document()
    answers = {
        (method, path, code): _documented(described)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        for code, described in operation["responses"].items()
        if code.startswith("2")
    }
    without = sorted(key for key, documented in answers.items() if not documented)
    assert len(answers) - len(without) >= 0.95 * len(answers), without
    # the one left: this document itself
    assert without == [("get", "/api/v1/openapi.json", "200")]


def test_an_answer_keeps_todays_json_and_refuses_an_undocumented_key() -> None:
    import pytest
    from pydantic import ValidationError

    from webhooks.services.answers import Enqueued, SecretRotated, answer

    # field order, numbers of their own kind, and an optional key left out stays out
    assert json.dumps(
        answer(SecretRotated, {"previousSecretValidHours": 24, "secretKey": "s", "partnerId": "p"})
    ) == ('{"partnerId": "p", "secretKey": "s", "previousSecretValidHours": 24}')
    sent = {"partnerId": "p", "enqueued": ["e1"], "failed": []}
    assert answer(Enqueued, sent) == sent
    assert answer(Enqueued, {**sent, "remaining": None}) == {**sent, "remaining": None}
    with pytest.raises(ValidationError, match="extra"):
        answer(Enqueued, {**sent, "undocumented": 1})
