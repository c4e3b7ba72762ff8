# Everything runs from the project's own virtual environment (.venv), created on demand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# what `make run` needs: the package and the local runtime's servers, no test or deploy tools
RUN_STAMP := $(VENV)/.run-stamp
# SAM CLI pins its own boto3/pydantic, so it lives in a venv of its own (template checks only).
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed-stamp
SAM_CLI_VERSION := 1.170.0
PYTEST_ARGS ?=
# LocalStack in host mode needs Python 3.13 (pyenv's, found by path: the shim alone does not run it)
LOCALSTACK := .venv-localstack
LOCALSTACK_STAMP := $(LOCALSTACK)/.installed-stamp
PYTHON313 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13))
LOCALSTACK_PINS := "localstack-core[runtime]==2026.3.0" "cbor2<6" "pyopenssl==25.3.0" "cryptography>=45.0.7,<47" service_identity

.PHONY: install test-tools deploy-tools run test test-localstack lint format typecheck unit integration e2e bench openapi clean

$(RUN_STAMP): pyproject.toml layers/common/requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[local]"
	@touch $(RUN_STAMP)

# the development tools too (pytest, ruff, mypy, Playwright, ...)
$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e ".[local,dev]"
	@touch $(STAMP)

$(TOOLS_STAMP):
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet "aws-sam-cli==$(SAM_CLI_VERSION)"
	@touch $(TOOLS_STAMP)

# the console's browser tests drive Debian's Chromium (Playwright's own download cannot work here)
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "install Chromium at $(CHROMIUM) for the browser tests"; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }

## make install: everything for development: the .venv with the dev tools, the SAM CLI, Chromium
install: $(STAMP) test-tools

# what `make test` needs beside .venv: the SAM CLI (tests/deploy) and Chromium (tests/browser)
test-tools: $(TOOLS_STAMP) $(CHROMIUM)

## make deploy-tools: the SAM CLI, in a venv of its own (.venv-tools/bin/sam)
deploy-tools: $(TOOLS_STAMP)

$(LOCALSTACK_STAMP):
	@test -n "$(PYTHON313)" || { echo "LocalStack needs Python 3.13: pyenv install 3.13 (or set PYTHON313)"; exit 1; }
	@test -x $(LOCALSTACK)/bin/python || $(PYTHON313) -m venv $(LOCALSTACK)
	$(LOCALSTACK)/bin/python -m pip install --quiet $(LOCALSTACK_PINS)
	@touch $(LOCALSTACK_STAMP)

## make run: the whole pipeline locally, with a demo partner and receiver (Ctrl-C stops it)
run: $(RUN_STAMP)
	$(VENV)/bin/webhooks local --demo

## make test: lint, type-check, then every test (starts and stops its own servers)
test: $(STAMP) test-tools lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

## make test-localstack: the integration and e2e suites against LocalStack in host mode (no Docker)
test-localstack: $(STAMP) $(LOCALSTACK_STAMP)
	$(PY) tests/localstack/run.py $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

integration: $(STAMP)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

e2e: $(STAMP)
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

## make openapi: regenerate docs/openapi.json from the models
openapi: $(STAMP)
	$(PY) -c "import json; from webhooks.api import openapi_document as d; print(json.dumps(d(), indent=2))" > docs/openapi.json

bench: $(STAMP)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache .hypothesis
