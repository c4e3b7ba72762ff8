import json
from pathlib import Path

from webhooks.openapi import EVENTS_PATH, openapi_document

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
