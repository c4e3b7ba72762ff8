# Everything runs from the project's own virtual environment (.venv), created on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# SAM CLI pins its own boto3/pydantic, so it lives in a venv of its own (template checks only).
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp
SAM_CLI_VERSION := 1.170.0
PYTEST_ARGS ?=

.PHONY: install run test lint format typecheck unit integration e2e bench openapi clean

$(STAMP): pyproject.toml layers/common/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[local,dev]"
	@touch $(STAMP)

$(TOOLS_STAMP):
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet "aws-sam-cli==$(SAM_CLI_VERSION)"
	@touch $(TOOLS_STAMP)

install: $(STAMP) $(TOOLS_STAMP)

## make run: the whole pipeline locally, with a demo partner and receiver (Ctrl-C stops it)
run: install
	$(VENV)/bin/webhooks local --demo

## make test: lint, type-check, then every test (starts and stops its own servers)
test: install lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy
	@for f in functions/*/app.py; do $(VENV)/bin/mypy $$f || exit 1; done

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: install
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

e2e: install
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

## make openapi: regenerate docs/openapi.json from the models
openapi: install
	$(PY) -c "import json; from webhooks.api import openapi_document as d; print(json.dumps(d(), indent=2))" > docs/openapi.json

bench: install
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .hypothesis
