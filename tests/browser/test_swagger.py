"""Swagger UI (/api/v1/docs) in a real browser under its Content-Security-Policy, against a
real `webhooks local`: it renders with no policy violation, and "Try it out" reaches the API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from runtime_process import RuntimeProcess

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


@pytest.fixture(scope="module")
def runtime() -> Iterator[RuntimeProcess]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: `make test` installs it (apt)")
    started = RuntimeProcess([], {"POWERTOOLS_LOG_LEVEL": "WARNING"}, capture=False)
    try:
        yield started
    finally:
        started.stop()


def test_swagger_ui_renders_under_its_csp_and_try_it_out_reaches_the_api(runtime: RuntimeProcess) -> None:
    violations: list[str] = []
    errors: list[str] = []
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.on("pageerror", lambda e: errors.append(str(e)))
            answer = page.goto(f"{runtime.url}/api/v1/docs")
            assert (
                answer is not None and "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            )
            page.get_by_text("Webhook notification service").first.wait_for()
            operation: Any = page.locator("#operations-meta-apiHealth")
            operation.locator(".opblock-summary").click()
            operation.get_by_role("button", name="Try it out").click()
            operation.get_by_role("button", name="Execute").click()
            status = operation.locator(".live-responses-table tbody .response .response-col_status").first
            status.wait_for()
            assert status.inner_text().strip() == "200"
            assert f"{runtime.url}/api/v1/health" in operation.locator(".request-url").inner_text()
        finally:
            browser.close()
    assert violations == [] and errors == []
