"""What the functions leave unloaded at import (their cold starts): each was a measured share
of one (docs/PERFORMANCE.md, 2026-12-05) and is loaded only where it is needed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"

HEAVY = [
    "aws_xray_sdk",  # tracing off: webhooks.observability
    "aws_lambda_powertools.event_handler.openapi.models",  # the OpenAPI document's generation
    "jsonschema",  # a registered event type's schema
    "referencing",
    "regex",
    # Powertools' batch utility imports every parser model (~45 ms) when pydantic is loaded
    # before it (batch/types.py: has_pydantic); the functions use no model, so they import it
    # first
    "aws_lambda_powertools.utilities.parser",
]


def _loaded_after(script: str, **variables: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED")}
    out = subprocess.run(
        [sys.executable, "-c", f"import json, sys; {script}; print(json.dumps(sorted(sys.modules)))"],
        env={**env, **variables},
        capture_output=True,
        text=True,
        check=True,
    )
    modules = set(json.loads(out.stdout.splitlines()[-1]))
    return [name for name in HEAVY if name in modules]


def test_importing_the_ingest_api_loads_none_of_the_heavy_optional_modules() -> None:
    assert _loaded_after("import webhooks.api, webhooks.services, webhooks.ingest.events_api") == []


def test_generating_the_openapi_document_loads_its_models() -> None:
    assert "aws_lambda_powertools.event_handler.openapi.models" in _loaded_after(
        "from webhooks.api import openapi_document; openapi_document()"
    )


def test_applying_a_schema_loads_jsonschema() -> None:
    loaded = _loaded_after(
        "from webhooks.ingest.catalog import _validator; _validator({'type': 'object'}).is_valid({})"
    )
    assert {"jsonschema", "referencing", "regex"} <= set(loaded)


@pytest.mark.parametrize("function", ["dispatch", "deliver"])
def test_importing_a_queue_function_loads_none_of_the_heavy_optional_modules(function: str) -> None:
    # nothing listens there: importing creates clients, it sends nothing
    queue = "http://127.0.0.1:9/000000000000/"
    loaded = _loaded_after(
        f"sys.path.insert(0, {str(FUNCTIONS / function)!r}); import app",
        EVENTS_QUEUE_URL=queue + "events",
        EVENTS_DLQ_URL=queue + "events-dlq",
        DELIVERY_QUEUE_URL=queue + "delivery",
        DELIVERY_DLQ_URL=queue + "delivery-dlq",
        MONGO_URI="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100",
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
    )
    assert loaded == []
