"""The web console in a real browser: Debian's Chromium driven by Playwright, against a real
`webhooks local` (SQS emulator, MongoDB-protocol server) and real HTTP receivers.

Screenshots of every view go to .artifacts/console/ (README shows two of them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from runtime_process import RuntimeProcess
from support import Receiver, Reply, partner_spec

playwright_sync = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "console"
AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
# what the machine's closed network needs (see the environment notes): no background calls
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE_NAME = "<img src=x onerror=alert(1)>Flaky & Co"
HOSTILE_BODY = "<script>alert('owned')</script> upstream is down"


class Stack:
    def __init__(self) -> None:
        self.good = Receiver()
        self.flaky = Receiver([Reply(status=500, body=HOSTILE_BODY.encode())])
        self.specs = [
            partner_spec("Good Partner", self.good.url, ["order.*"]),
            partner_spec(HOSTILE_NAME, self.flaky.url, ["order.*", "invoice.*"]),
        ]
        self.runtime = RuntimeProcess(
            self.specs, {"WEBHOOK_MAX_ATTEMPTS": "1", "POWERTOOLS_LOG_LEVEL": "WARNING"}, capture=False
        )
        self.admin_key = (self.runtime.data_dir / "admin-key").read_text().strip()
        self.url = f"{self.runtime.url}/console"

    def post(self, event_type: str) -> str:
        reply = requests.post(
            f"{self.runtime.url}/api/v1/events",
            json=[{"eventType": event_type, "data": {"note": "<b>not bold</b>"}}],
            headers={"X-API-Key": self.specs[0]["apiKey"]},
            timeout=10,
        )
        assert reply.status_code == 202, reply.text
        return str(reply.json()["results"][0]["eventId"])

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        reply = requests.request(
            method,
            f"{self.runtime.url}/api/v1/admin{path}",
            headers={"X-Admin-Key": self.admin_key},
            timeout=10,
            **kwargs,
        )
        assert reply.ok, reply.text
        return reply.json()

    def close(self) -> None:
        self.runtime.stop()
        self.good.close()
        self.flaky.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed: `make install` installs it (apt)")
    built = Stack()
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    dialogs: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert dialogs == [], f"a dialog opened (script ran from data?): {dialogs}"
    assert errors == [], errors


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, stack: Stack, role: str, key: str) -> None:
    page.goto(stack.url)
    page.get_by_label("Sign in as").select_option(role)
    page.get_by_label("Key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def wait_for(check: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_wrong_key_is_told_so(stack: Stack, page: Any) -> None:
    sign_in(page, stack, "operator", "adm_wrong")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "not accepted" in alert.inner_text()
    assert page.get_by_label("Key").is_visible()  # still on the sign-in form
    shot(page, "01-sign-in-refused")


def test_operator_finds_the_failing_partner_reads_its_answer_and_replays(stack: Stack, page: Any) -> None:
    event_id = stack.post("order.created")
    assert wait_for(lambda: stack.flaky.requests and stack.good.requests)
    partners = stack.admin("GET", "/partners")["partners"]
    flaky_id = next(p["partnerId"] for p in partners if p["name"] == HOSTILE_NAME)
    assert wait_for(
        lambda: stack.admin("GET", f"/partners/{flaky_id}")["endpoint"]["consecutiveFailures"] > 0
    )

    sign_in(page, stack, "operator", stack.admin_key)
    page.get_by_role("heading", name="Overview").wait_for()
    attention = page.locator("ul.attention")
    attention.wait_for()
    assert HOSTILE_NAME in attention.inner_text()  # the name as text, markup and all
    assert page.locator("img").count() == 0
    caption = page.locator("figcaption").inner_text()
    assert "1 delivered" in caption and "1 dead-lettered" in caption, caption  # the two attempts so far
    assert re.search(r"[1-9]\d* events accepted", caption), caption
    shot(page, "02-overview")

    page.get_by_role("link", name="Partners").click()
    row = page.get_by_role("row").filter(has_text=HOSTILE_NAME)
    row.wait_for()
    assert "failing" in row.inner_text()
    shot(page, "03-partners")

    row.get_by_role("link").click()
    page.get_by_role("heading", name=HOSTILE_NAME).wait_for()
    shot(page, "04-partner")
    page.get_by_role("link", name=event_id).first.click()
    page.get_by_role("heading", name=f"Event {event_id}").wait_for()
    response = page.locator("section", has_text=HOSTILE_NAME).locator("pre.response").first
    assert response.inner_text() == HOSTILE_BODY  # the endpoint's answer, as text
    assert "dead_lettered" in page.locator("section", has_text=HOSTILE_NAME).inner_text()
    assert "null" not in page.locator("main").inner_text().split()  # nothing empty rendered as text
    shot(page, "05-event-failed")

    stack.flaky.script = [Reply(status=200)]  # the partner fixes its endpoint
    page.get_by_role("button", name=f"Replay to {HOSTILE_NAME}").click()
    page.get_by_role("status").filter(has_text="queued").wait_for()

    def delivered() -> bool:
        page.get_by_role("button", name="Refresh").click()
        page.get_by_role("heading", name=f"Event {event_id}").wait_for()
        return "delivered" in page.locator("section", has_text=HOSTILE_NAME).inner_text()

    assert wait_for(delivered)
    shot(page, "06-event-replayed")


def test_deliveries_and_event_types_pages(stack: Stack, page: Any) -> None:
    stack.admin(
        "PUT",
        "/event-types/invoice.created",
        json={"schema": {"type": "object"}, "description": "<b>Invoices</b> & more"},
    )
    sign_in(page, stack, "operator", stack.admin_key)
    page.get_by_role("heading", name="Overview").wait_for()
    page.get_by_role("link", name="Deliveries").click()
    page.get_by_role("heading", name="Deliveries").wait_for()
    page.get_by_label("Status").select_option("delivered")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**status=delivered**")
    page.get_by_role("table").wait_for()
    shot(page, "07-deliveries")
    page.get_by_role("link", name="Event types").click()
    summary = page.locator("summary", has_text="invoice.created")
    summary.wait_for()
    assert "<b>Invoices</b> & more" in summary.inner_text()
    summary.click()
    assert json.loads(page.locator("details pre").inner_text()) == {"type": "object"}
    shot(page, "08-event-types")


def test_a_partner_sees_only_its_own_deliveries(stack: Stack, page: Any) -> None:
    mine = stack.post("order.created")
    theirs = stack.post("invoice.created")  # only the other partner subscribes to invoices
    assert wait_for(lambda: any(r.headers.get("webhook-id") == theirs for r in stack.flaky.requests))
    assert wait_for(lambda: any(r.headers.get("webhook-id") == mine for r in stack.good.requests))

    sign_in(page, stack, "partner", stack.specs[0]["apiKey"])
    page.get_by_role("heading", name="Deliveries to Good Partner").wait_for()
    table = page.get_by_role("table")
    assert mine in table.inner_text()
    assert theirs not in table.inner_text()
    assert "dead_lettered" not in table.inner_text()  # the other partner's failures
    shot(page, "09-partner-view")

    page.goto(f"{stack.url}#/events/{theirs}")  # the API refuses it for this key
    page.get_by_role("heading", name="Event not found").wait_for()
    page.goto(f"{stack.url}#/events/{mine}")
    page.get_by_role("heading", name=f"Event {mine}").wait_for()
    shot(page, "10-partner-event")


def test_keyboard_only_sign_in(stack: Stack, page: Any) -> None:
    page.goto(stack.url)
    page.get_by_label("Key").wait_for()
    assert page.evaluate("document.activeElement.id") == "key"  # the form opens ready to type
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "role"
    page.keyboard.press("ArrowDown")  # partner
    page.keyboard.press("ArrowUp")  # operator again
    page.keyboard.press("Tab")
    page.keyboard.type(stack.admin_key)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sign in"
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Overview").wait_for()
    page.keyboard.press("Tab")  # from the page's main region on, the navigation is reachable
    links = [page.evaluate("document.activeElement.textContent")]
    for _ in range(8):
        page.keyboard.press("Tab")
        links.append(page.evaluate("document.activeElement.textContent"))
    assert {"Last hour", "Last day"} <= set(links)


@pytest.mark.parametrize("view", ["", "#/partners", "#/deliveries", "#/event-types"])
def test_no_critical_accessibility_violations(stack: Stack, browser: Any, view: str) -> None:
    # axe is injected into the page: a context of its own that lets it past the CSP
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    try:
        sign_in(page, stack, "operator", stack.admin_key)
        page.get_by_role("heading", name="Overview").wait_for()
        if view:
            page.goto(f"{stack.url}{view}")
            page.locator("main h1").wait_for()
            page.wait_for_load_state("networkidle")
        page.add_script_tag(content=AXE)
        found = page.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)")
        serious = [
            (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in found
            if v["impact"] in ("critical", "serious")
        ]
        assert serious == []
    finally:
        context.close()


def test_the_console_is_served_with_a_strict_content_security_policy(stack: Stack) -> None:
    reply = requests.get(stack.url, timeout=10)
    policy = reply.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in reply.text and 'type="module"' in reply.text  # no inline script
    assert requests.get(f"{stack.url}/../../etc/passwd", timeout=10).status_code == 404


def test_partner_page_actions_test_rotate_recover_deactivate(stack: Stack, browser: Any) -> None:
    from standardwebhooks.webhooks import Webhook

    context = browser.new_context()
    page = context.new_page()
    confirmed: list[str] = []

    def accept(dialog: Any) -> None:
        confirmed.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    try:
        sign_in(page, stack, "operator", stack.admin_key)
        page.get_by_role("heading", name="Overview").wait_for()
        page.get_by_role("link", name="Partners").click()
        page.get_by_role("link", name="Good Partner").click()
        page.get_by_role("heading", name="Good Partner").wait_for()

        page.get_by_role("button", name="Rotate secret").click()
        secret = page.locator(".notice code")
        secret.wait_for()
        new_secret = secret.inner_text()
        assert new_secret.startswith("whsec_") and new_secret != stack.specs[0]["secretKey"]
        before = len(stack.good.requests)
        page.get_by_role("button", name="Send test event").click()
        page.get_by_role("status").filter(has_text="Test event").wait_for()
        assert wait_for(lambda: len(stack.good.requests) > before)
        test_hook = stack.good.requests[-1]
        assert test_hook.headers.get("X-Recart-Event-Type") == "webhook.test"
        Webhook(new_secret).verify(test_hook.body, test_hook.headers)  # signed with the new secret
        page.reload()  # the secret is not shown again
        page.get_by_role("heading", name="Good Partner").wait_for()
        assert new_secret not in page.content()

        page.get_by_role("link", name="Partners").click()
        page.get_by_role("row").filter(has_text=HOSTILE_NAME).get_by_role("link").click()
        page.get_by_role("heading", name=HOSTILE_NAME).wait_for()
        page.get_by_label("Recover failed deliveries since").fill("2026-01-01T00:00")
        page.get_by_role("button", name="Recover").click()
        page.get_by_role("status").filter(has_text="Recovery:").wait_for()
        page.get_by_role("button", name="Deactivate").click()
        page.get_by_role("status").filter(has_text="Deactivated").wait_for()
        assert confirmed and "Deactivate" in confirmed[0]
        flaky = next(p for p in stack.admin("GET", "/partners")["partners"] if p["name"] == HOSTILE_NAME)
        assert flaky["isActive"] is False
        shot(page, "11-partner-actions")
    finally:
        context.close()
