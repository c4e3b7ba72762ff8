"""What the ingest API leaves unloaded at import (its cold start): each was a measured share
of it (docs/PERFORMANCE.md, 2026-12-05) and is loaded only where it is needed."""

import json
import os
import subprocess
import sys

HEAVY = [
    "aws_xray_sdk",  # tracing off: webhooks.observability
    "aws_lambda_powertools.event_handler.openapi.models",  # the OpenAPI document's generation
    "jsonschema",  # a registered event type's schema
    "referencing",
    "regex",
]


def _loaded_after(script: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED")}
    out = subprocess.run(
        [sys.executable, "-c", f"import json, sys; {script}; print(json.dumps(sorted(sys.modules)))"],
        env=env,
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
