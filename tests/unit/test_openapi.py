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
    assert len(ids) == len(set(ids)) == 29, sorted(ids)


def test_every_route_the_app_serves_is_documented_with_its_credential() -> None:
    from webhooks.api import app

    doc = openapi_document()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/v1/admin"):
                assert operation["security"] == [{"AdminKey": []}], (method, path)
                assert {"401", "403", "429"} <= set(operation["responses"]), (method, path)
            # invalid input is a 400 with the API's error body, never Powertools' default 422
            assert "HTTPValidationError" not in json.dumps(operation), (method, path)
    served = {
        (route.method.lower(), route.openapi_path) for route in app._static_routes + app._dynamic_routes
    }
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    # Swagger UI, its files and the console's are pages, not API operations
    pages = ("/api/v1/docs", "/console")
    assert documented == {(m, p) for m, p in served if not p.startswith(pages)}
