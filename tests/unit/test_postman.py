import json
from pathlib import Path

from webhooks.api import openapi_document

COLLECTION = Path(__file__).resolve().parents[2] / "postman_collection.json"


def test_collection_targets_real_routes_with_variables() -> None:
    collection = json.loads(COLLECTION.read_text())
    assert {v["key"] for v in collection["variable"]} == {"baseUrl", "apiKey"}
    paths = openapi_document()["paths"]
    for item in collection["item"]:
        request = item["request"]
        path = request["url"]["raw"].removeprefix("{{baseUrl}}")
        assert path in paths and request["method"].lower() in paths[path], item["name"]
        if "body" in request:
            json.loads(request["body"]["raw"])
