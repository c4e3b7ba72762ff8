"""The web console in a real browser: Debian's Chromium driven by Playwright, against a real
`webhooks local` (SQS emulator, MongoDB-protocol server) and real HTTP receivers.

Screenshots of every view go to .artifacts/console/ (README shows two of them).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from bson import ObjectId
from pymongo import MongoClient

from webhooks_cli.servers import free_port

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
CLOSED_NAME = "Closed Door"  # its URL is a port nothing listens on: connection refused
SLOW_NAME = "Slow Poke"  # answers after the delivery timeout: timed out
PHONE = {"width": 390, "height": 844}


class Stack:
    def __init__(self) -> None:
        self.good = Receiver()
        self.flaky = Receiver([Reply(status=500, body=HOSTILE_BODY.encode())])
        self.slow = Receiver([Reply(delay=4.0)])
        self.specs = [
            partner_spec("Good Partner", self.good.url, ["order.*"]),
            partner_spec(HOSTILE_NAME, self.flaky.url, ["order.*", "invoice.*"]),
            partner_spec(CLOSED_NAME, f"http://127.0.0.1:{free_port()}/hook", ["shipment.*"]),
            partner_spec(SLOW_NAME, self.slow.url, ["shipment.*"]),
        ]
        self.runtime = RuntimeProcess(
            self.specs,
            {"WEBHOOK_MAX_ATTEMPTS": "1", "WEBHOOK_TIMEOUT": "1500", "POWERTOOLS_LOG_LEVEL": "WARNING"},
            capture=False,
        )
        self.admin_key = (self.runtime.data_dir / "admin-key").read_text().strip()
        self.url = f"{self.runtime.url}/console"

    def post(self, event_type: str, data: dict[str, Any] | None = None) -> str:
        reply = requests.post(
            f"{self.runtime.url}/api/v1/events",
            json=[{"eventType": event_type, "data": data or {"note": "<b>not bold</b>"}}],
            headers={"X-API-Key": self.specs[0]["apiKey"]},
            timeout=10,
        )
        assert reply.status_code == 202, reply.text
        return str(reply.json()["results"][0]["eventId"])

    def partner_id(self, name: str) -> str:
        return str(
            next(p["partnerId"] for p in self.admin("GET", "/partners")["partners"] if p["name"] == name)
        )

    def attempts(self, event_id: str) -> list[dict[str, Any]]:
        return list(self.admin("GET", f"/events/{event_id}/deliveries")["deliveries"])

    def database(self) -> Any:
        env = self.runtime.endpoints
        return MongoClient(env["MONGO_URI"])[env.get("MONGO_DB_NAME", "recart_webhook_db")]

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
        for receiver in (self.good, self.flaky, self.slow):
            receiver.close()


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


@contextlib.contextmanager
def watched_page(browser: Any, *, accept_dialogs: bool) -> Iterator[tuple[Any, list[str]]]:
    """A fresh page, the messages of the dialogs it opened (accepted or dismissed), and no
    script error on it by the end."""
    context = browser.new_context(
        viewport={"width": 1200, "height": 900}, permissions=["clipboard-read", "clipboard-write"]
    )
    page = context.new_page()
    dialogs: list[str] = []

    def answer(dialog: Any) -> None:
        dialogs.append(dialog.message)
        if accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", answer)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page, dialogs
    context.close()
    assert errors == [], errors


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    with watched_page(browser, accept_dialogs=False) as (page, dialogs):
        yield page
    assert dialogs == [], f"a dialog opened (script ran from data?): {dialogs}"


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


def operator(page: Any, stack: Stack, view: str = "") -> None:
    sign_in(page, stack, "operator", stack.admin_key)
    page.get_by_role("heading", name="Overview").wait_for()
    if view:
        page.goto(f"{stack.url}{view}")
        page.locator("main h1").wait_for()


def test_a_wrong_key_is_told_so(stack: Stack, page: Any) -> None:
    sign_in(page, stack, "operator", "adm_wrong")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "not accepted" in alert.inner_text()
    assert page.get_by_label("Key").is_visible()  # still on the sign-in form
    shot(page, "01-sign-in-refused")


def test_the_sign_in_page_says_where_the_admin_key_is(stack: Stack, page: Any) -> None:
    page.goto(stack.url)
    page.get_by_label("Key").wait_for()
    help_text = page.locator("main").inner_text()
    assert "webhooks local" in help_text and ".local/admin-key" in help_text
    assert "webhooks partners create" in help_text  # and where a partner's key comes from
    # what the page says is where the runtime keeps it
    assert (stack.runtime.data_dir / "admin-key").read_text().strip() == stack.admin_key


def test_operator_finds_the_failing_partner_reads_its_answer_and_replays(stack: Stack, page: Any) -> None:
    event_id = stack.post("order.created")
    assert wait_for(lambda: stack.flaky.requests and stack.good.requests)
    # the overview's counts come from the stats deliver writes with its log, after the batch:
    # wait for both attempts there, not only at the receivers
    assert wait_for(lambda: len(stack.attempts(event_id)) >= 2)
    flaky_id = stack.partner_id(HOSTILE_NAME)
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
    # the event itself: its type, when it was accepted, its payload (as text)
    assert page.locator("dd.event-type").inner_text() == "order.created"
    accepted = page.locator("time").get_attribute("datetime")
    assert accepted and accepted.startswith(stack.attempts(event_id)[0]["timestamp"][:4])
    assert json.loads(page.locator("pre.payload").inner_text()) == {"note": "<b>not bold</b>"}
    section = page.locator("section", has_text=HOSTILE_NAME)
    response = section.locator("pre.response").first
    assert response.inner_text() == HOSTILE_BODY  # the endpoint's answer, as text
    assert "dead-lettered" in section.inner_text()
    assert section.locator(".series").count() == 0  # one series so far
    assert "null" not in page.locator("main").inner_text().split()  # nothing empty rendered as text
    shot(page, "05-event-failed")

    stack.flaky.script = [Reply(status=200)]  # the partner fixes its endpoint
    section.get_by_role("button", name=f"Replay to {HOSTILE_NAME}").click()
    # no Refresh: the page waits for the new attempt and says how it went, beside the button
    result = section.locator(".actions [role=status]")
    result.filter(has_text="Replay delivered").wait_for(timeout=30_000)
    assert "HTTP 200" in result.inner_text()
    assert section.locator("article.attempt").count() == 2
    marker = section.locator(".series")
    assert marker.count() == 1 and "New series" in marker.inner_text()
    # the marker sits between the failed series and the replayed one
    order = section.locator(".attempts > *").evaluate_all("nodes => nodes.map(n => n.className)")
    assert order == ["attempt", "series", "attempt"], order
    assert "null" not in page.locator("main").inner_text().split()
    shot(page, "06-event-replayed")


def test_the_chart_has_a_time_axis_a_value_axis_and_the_events_line_above_the_bars(
    stack: Stack, page: Any
) -> None:
    event_id = stack.post("order.created")
    assert wait_for(lambda: len(stack.attempts(event_id)) >= 2)
    operator(page, stack)
    chart = page.locator("svg.chart")
    times = chart.locator(".x-axis text.time").all_text_contents()
    assert len(times) >= 4 and times[-1] == "now", times
    assert all(re.fullmatch(r"\d{1,2}:\d{2}( [AP]M)?", t) for t in times[:-1]), times
    deliveries_axis = chart.locator(".y-axis.deliveries text").all_text_contents()
    assert deliveries_axis[0] == "0" and int(deliveries_axis[-1]) >= 1, deliveries_axis
    assert chart.locator(".y-axis.events text").count() >= 2
    titles = chart.locator(".axis-title").all_text_contents()
    assert titles == ["Events accepted per minute", "Deliveries per minute"], titles
    line_bottom, bars_top = chart.evaluate(
        """svg => {
            const line = svg.querySelector("polyline.accepted").getBBox();
            const tops = [...svg.querySelectorAll("rect.bar")].map(r => r.getBBox().y);
            return [line.y + line.height, Math.min(...tops)];
        }"""
    )
    assert line_bottom < bars_top  # the events line is on a panel of its own, not over the bars


def test_the_day_chart_ends_now(stack: Stack, page: Any) -> None:
    operator(page, stack)
    before_ms = int(time.time()) * 1000
    page.goto(f"{stack.url}#/overview/day")
    page.locator("svg.chart .axis-title", has_text="per hour").first.wait_for()
    chart = page.locator("svg.chart")
    end = page.evaluate("iso => Date.parse(iso)", chart.get_attribute("data-end"))
    assert end >= before_ms  # not the start of the current hour
    assert chart.locator(".x-axis text.time").last.text_content() == "now"
    right_edge = chart.evaluate(
        """svg => {
            const now = svg.querySelector("text.now").getAttribute("x");
            const bars = [...svg.querySelectorAll("rect.bar")].map(r => r.getBBox().x + r.getBBox().width);
            return [Number(now), Math.max(0, ...bars)];
        }"""
    )
    assert right_edge[1] <= right_edge[0]  # the current hour's bar stops at now
    assert page.get_by_role("link", name="Last day").get_attribute("aria-current") == "true"
    shot(page, "15-overview-day")


def test_a_partner_page_shows_its_id_to_copy_and_a_dead_lettering_endpoint_in_red(
    stack: Stack, page: Any
) -> None:
    event_id = stack.post("shipment.created", {"id": 1})
    closed_id = stack.partner_id(CLOSED_NAME)
    assert wait_for(lambda: any(a["partnerId"] == closed_id for a in stack.attempts(event_id)))
    operator(page, stack, "#/partners")
    row = page.get_by_role("row").filter(has_text=CLOSED_NAME)
    assert "bad" in (row.locator(".badge").first.get_attribute("class") or "")
    row.get_by_role("link", name=CLOSED_NAME).click()
    page.get_by_role("heading", name=CLOSED_NAME).wait_for()
    assert page.locator("code.copyable").inner_text() == closed_id
    assert f"webhooks partners show {closed_id}" in page.locator("main").inner_text()
    page.get_by_role("button", name="Copy partner id").click()
    page.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == closed_id
    assert page.locator("dd.dead-lettered").inner_text().startswith("1 not delivered since")
    health = page.locator(".badges .badge").first
    assert "bad" in (health.get_attribute("class") or "") and "dead-lettering" in health.inner_text()
    assert "warn" not in (health.get_attribute("class") or "")
    shot(page, "12-partner-dead-lettering")


def test_deliveries_of_all_partners_with_errors_in_words_and_the_raw_text_behind(
    stack: Stack, page: Any
) -> None:
    event_id = stack.post("shipment.created", {"id": 2})
    assert wait_for(lambda: len(stack.attempts(event_id)) >= 2, timeout=30)
    operator(page, stack, "#/deliveries")
    assert page.get_by_label("Partner").locator("option:checked").inner_text() == "All partners"
    table = page.get_by_role("table")
    table.wait_for()
    rows = table.get_by_role("row").filter(has_text=event_id)
    assert rows.count() == 2
    by_partner = {}
    for n in range(2):
        row = rows.nth(n)
        words = row.locator("details.raw summary")
        by_partner[row.locator("td").nth(2).inner_text()] = (
            words.inner_text(),
            words.get_attribute("title"),
            row.locator("details.raw code").text_content(),
        )
    refused, slow = by_partner[CLOSED_NAME], by_partner[SLOW_NAME]
    assert refused[0] == "connection refused"
    assert "Connection refused" in (refused[1] or "") and refused[1] == refused[2]  # the raw text
    assert slow[0] == "timed out" and "timed out" in (slow[2] or "")
    assert table.locator("td", has_text="HTTP 500").count() >= 1  # the flaky partner's answers
    shot(page, "07-deliveries")


def test_deliveries_and_event_types_pages(stack: Stack, page: Any) -> None:
    stack.admin(
        "PUT",
        "/event-types/invoice.created",
        json={"schema": {"type": "object"}, "description": "<b>Invoices</b> & more"},
    )
    operator(page, stack)
    page.get_by_role("link", name="Deliveries").click()
    page.get_by_role("heading", name="Deliveries").wait_for()
    page.get_by_label("Partner").select_option(label="Good Partner")
    page.get_by_label("Status").select_option("delivered")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**status=delivered**")
    page.locator("caption", has_text="Attempts to Good Partner").wait_for()  # one partner's, chosen
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
    # the table is read from the log, which deliver writes after its batch
    assert wait_for(lambda: stack.attempts(mine) and stack.attempts(theirs))

    sign_in(page, stack, "partner", stack.specs[0]["apiKey"])
    page.get_by_role("heading", name="Deliveries to Good Partner").wait_for()
    assert page.locator("#who").inner_text() == "Signed in as Good Partner (partner)"
    status = page.locator("dd.endpoint-status .badge")
    assert status.inner_text() == "enabled, healthy" and "ok" in (status.get_attribute("class") or "")
    table = page.get_by_role("table")
    assert mine in table.inner_text()
    assert theirs not in table.inner_text()
    assert "dead-lettered" not in table.inner_text()  # the other partner's failures
    shot(page, "09-partner-view")

    page.goto(f"{stack.url}#/events/{theirs}")  # the API refuses it for this key
    page.get_by_role("heading", name="Event not found").wait_for()
    page.goto(f"{stack.url}#/events/{mine}")
    page.get_by_role("heading", name=f"Event {mine}").wait_for()
    assert page.locator("dd.event-type").inner_text() == "order.created"
    assert json.loads(page.locator("pre.payload").inner_text()) == {"note": "<b>not bold</b>"}
    page.reload()  # who is signed in survives a reload of the tab
    page.get_by_role("heading", name=f"Event {mine}").wait_for()
    assert "Good Partner" in page.locator("#who").inner_text()
    shot(page, "10-partner-event")


OPERATOR_VIEWS = [
    ("", "Overview"),
    ("#/overview/day", "Overview"),
    ("#/partners", "Partners"),
    ("#/partner", "Partners"),  # a partner's page: its id, filled in by the test
    ("#/deliveries", "Deliveries"),
    ("#/event", "Deliveries"),  # an event's page
    ("#/event-types", "Event types"),
]


def concrete(stack: Stack, view: str) -> str:
    """A view's address, with a real partner's or event's id where the view needs one."""
    if view == "#/partner":
        return f"#/partners/{stack.partner_id(HOSTILE_NAME)}"
    if view == "#/event":
        event_id = stack.post("order.created")
        assert wait_for(lambda: stack.attempts(event_id))
        return f"#/events/{event_id}"
    return view


@pytest.mark.parametrize(("view", "section"), OPERATOR_VIEWS)
def test_every_view_fits_a_phone_and_marks_where_it_is_in_the_nav(
    stack: Stack, browser: Any, view: str, section: str
) -> None:
    shown, view = view, concrete(stack, view)
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        operator(page, stack, view)
        page.wait_for_load_state("networkidle")
        width, inner = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
        assert width <= inner, f"{view or 'overview'} scrolls sideways: {width} > {inner}"
        current = page.locator("nav a[aria-current=page]")
        assert current.count() == 1 and current.inner_text() == section
        shot(page, "13-phone-" + (re.sub(r"[^a-z]+", "-", shown[2:]) or "overview"))
    finally:
        context.close()


def test_the_partner_view_fits_a_phone(stack: Stack, browser: Any) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in(page, stack, "partner", stack.specs[0]["apiKey"])
        page.get_by_role("heading", name="Deliveries to Good Partner").wait_for()
        width, inner = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
        assert width <= inner
        assert page.locator("nav a[aria-current=page]").inner_text() == "My deliveries"
    finally:
        context.close()


def test_the_console_has_a_favicon_its_policy_allows(stack: Stack, page: Any) -> None:
    reply = requests.get(stack.url, timeout=10)
    policy = dict(
        part.strip().split(" ", 1)
        for part in reply.headers["Content-Security-Policy"].split(";")
        if part.strip()
    )
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(stack.url)
    page.get_by_label("Key").wait_for()
    href = page.locator("link[rel=icon]").get_attribute("href") or ""
    scheme = href.split(",", 1)[0]
    assert scheme == "data:image/svg+xml" and "data:" in policy["img-src"].split()
    icon = unquote(href.split(",", 1)[1])  # an image, in the page: nothing fetched from elsewhere
    assert icon.startswith("<svg") and icon.endswith("</svg>")
    assert violations == []


def test_rotating_a_partners_api_key_shows_the_new_key_once_and_clears_the_legacy_flag(
    stack: Stack, browser: Any
) -> None:
    created = stack.admin(
        "POST", "/partners", json={"name": "Legacy Lane", "webhookUrl": stack.good.url, "events": ["order.*"]}
    )
    partner_id, old_key = created["partnerId"], created["apiKey"]
    # as `webhooks migrate` leaves a partner whose plain key it hashed
    stack.database()["partners"].update_one({"_id": ObjectId(partner_id)}, {"$set": {"apiKeyLegacy": True}})
    context = browser.new_context()
    page = context.new_page()
    confirmed: list[str] = []

    def accept(dialog: Any) -> None:
        confirmed.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    try:
        operator(page, stack, "#/partners")
        row = page.get_by_role("row").filter(has_text="Legacy Lane")
        assert row.locator(".badge.legacy").inner_text() == "legacy key: rotate"
        row.get_by_role("link", name="Legacy Lane").click()
        page.get_by_role("heading", name="Legacy Lane").wait_for()
        assert page.locator(".badges .legacy").inner_text() == "legacy key: rotate"

        page.get_by_label("Old API key keeps working for (hours)").fill("0")
        page.get_by_role("button", name="Rotate API key").click()
        shown = page.locator("[role=status] code.copyable")
        shown.wait_for()
        new_key = shown.inner_text()
        assert confirmed and "stops working at once" in confirmed[0]
        assert new_key and new_key != old_key
        assert page.locator(".badges .legacy").count() == 0  # flagged until rotated
        event = [{"eventType": "order.created", "data": {}}]
        assert stack.runtime.post(event, old_key)[0] == 401
        assert stack.runtime.post(event, new_key)[0] == 202
        shot(page, "14-api-key-rotated")

        page.reload()  # shown once: not again, and the flag stays gone
        page.get_by_role("heading", name="Legacy Lane").wait_for()
        assert new_key not in page.content()
        assert page.locator(".badges .legacy").count() == 0
        page.goto(f"{stack.url}#/partners")
        page.get_by_role("row").filter(has_text="Legacy Lane").wait_for()
        assert page.get_by_role("row").filter(has_text="Legacy Lane").locator(".legacy").count() == 0
    finally:
        context.close()


def test_a_partner_document_the_api_cannot_read_is_named_with_its_problems_not_hidden(
    stack: Stack, page: Any
) -> None:
    # a Node-era document with a string createdAt: left out of the lists, reported
    odd = stack.database()["partners"].insert_one(
        {
            "name": "Old Record",
            "webhookUrl": stack.good.url,
            "apiKeyHash": os.urandom(32).hex(),
            "secretKey": "whsec_b2xk",
            "isActive": True,
            "createdAt": "2019-03-01",
        }
    )
    odd_id = str(odd.inserted_id)
    operator(page, stack, "#/partners")
    report = page.locator(".notice", has_text="webhooks migrate")
    report.wait_for()
    assert "1 stored partner document has fields of the wrong type" in report.inner_text()
    assert "createdAt" in report.inner_text()
    report.get_by_role("link", name=odd_id).click()
    page.get_by_role("heading", name="Old Record").wait_for()
    assert "createdAt" in page.locator(".notice.problems").inner_text()
    page.goto(f"{stack.url}#/")
    page.locator(".notice", has_text=odd_id).wait_for()  # the overview says so too
    stack.admin("DELETE", f"/partners/{odd_id}")  # the other tests' lists stay as they were


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


@pytest.mark.parametrize("view", [v for v, _ in OPERATOR_VIEWS])
def test_no_critical_accessibility_violations(stack: Stack, browser: Any, view: str) -> None:
    view = concrete(stack, view)
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
        assert serious_violations(page) == []
    finally:
        context.close()


def serious_violations(page: Any) -> list[Any]:
    page.add_script_tag(content=AXE)
    found = page.evaluate("axe.run(document, {resultTypes: ['violations']}).then(r => r.violations)")
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in found
        if v["impact"] in ("critical", "serious")
    ]


def test_no_critical_accessibility_violations_on_a_phone_signing_in_and_as_a_partner(
    stack: Stack, browser: Any
) -> None:
    context = browser.new_context(bypass_csp=True, viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(stack.url)
        page.get_by_label("Key").wait_for()
        assert serious_violations(page) == []
        sign_in(page, stack, "partner", stack.specs[0]["apiKey"])
        page.get_by_role("heading", name="Deliveries to Good Partner").wait_for()
        page.wait_for_load_state("networkidle")
        assert serious_violations(page) == []
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


README_SHOTS = SHOTS / "readme"  # copied by hand to docs/console/ for README
DEMO = ("Acme Shop", "Globex Outlet", "Initech Books")


def test_readme_screenshots_show_demo_partners_a_failing_endpoint_and_a_replay(browser: Any) -> None:
    """README's pictures, from a stack of its own with plain names: an endpoint that fails
    (503, retried, then dead-lettered) and one of its events replayed once it answers."""
    acme, globex, initech = Receiver(), Receiver([Reply(status=503, body=b"maintenance")]), Receiver()
    specs = [
        partner_spec(DEMO[0], acme.url, ["order.*", "cart.*"]),
        partner_spec(DEMO[1], globex.url, ["order.*"]),
        partner_spec(DEMO[2], initech.url, ["order.created"]),
    ]
    runtime = RuntimeProcess(
        specs,
        {"WEBHOOK_MAX_ATTEMPTS": "2", "WEBHOOK_RETRY_DELAY": "1000", "POWERTOOLS_LOG_LEVEL": "WARNING"},
        capture=False,
    )
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    try:
        kinds = ["order.created", "order.paid", "cart.abandoned"]
        events = [
            {"eventType": kinds[n % 3], "data": {"orderId": f"A-{1000 + n}", "total": 19.9 + n}}
            for n in range(12)
        ]
        status, body = runtime.post(events, specs[0]["apiKey"])
        assert status == 202, body
        failed = next(r["eventId"] for r in body["results"] if r["eventType"] == "order.created")
        admin_key = (runtime.data_dir / "admin-key").read_text().strip()
        headers = {"X-Admin-Key": admin_key}

        def dead_lettered() -> bool:
            _, found = runtime.request("GET", f"/api/v1/admin/events/{failed}/deliveries", headers=headers)
            return any(a["outcome"] == "dead_lettered" for a in found["deliveries"])

        assert wait_for(dead_lettered, timeout=30)
        page.goto(f"{runtime.url}/console")
        page.get_by_label("Key").fill(admin_key)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Overview").wait_for()
        assert all(name in page.locator("main").inner_text() for name in DEMO)
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(README_SHOTS / "overview.png"), full_page=True)

        page.get_by_role("link", name="Partners").click()
        page.get_by_role("heading", name="Partners").wait_for()
        page.get_by_role("link", name=DEMO[1]).click()
        page.get_by_role("heading", name=DEMO[1]).wait_for()
        page.screenshot(path=str(README_SHOTS / "partner.png"), full_page=True)

        globex.script = [Reply(status=200)]  # back from maintenance
        page.goto(f"{runtime.url}/console#/events/{failed}")
        section = page.locator("section", has_text=DEMO[1])
        section.get_by_role("button", name=f"Replay to {DEMO[1]}").click()
        section.locator(".actions [role=status]").filter(has_text="Replay delivered").wait_for(timeout=30_000)
        page.screenshot(path=str(README_SHOTS / "event.png"), full_page=True)
    finally:
        context.close()
        runtime.stop()
        for receiver in (acme, globex, initech):
            receiver.close()


def test_a_portal_link_signs_in_as_its_partner_without_its_key_and_ends_when_revoked(
    stack: Stack, page: Any
) -> None:
    partner_id = stack.partner_id("Good Partner")
    issued = stack.admin("POST", f"/partners/{partner_id}/portal-tokens", json={"ttlSeconds": 600})
    token = issued["token"]
    assert issued["url"] == f"{stack.url}#portal={token}"
    sent: list[dict[str, str]] = []
    page.on("request", lambda r: sent.append(r.headers) if "/api/v1/" in r.url else None)

    page.goto(issued["url"])
    page.get_by_role("heading", name="Deliveries to Good Partner").wait_for()
    assert page.locator("#who").inner_text() == "Signed in as Good Partner (partner)"
    assert token not in page.url and page.url.endswith("#/")  # out of the address bar at once
    assert token in page.evaluate("sessionStorage.getItem('webhooks-console')")
    assert sent and all(h.get("authorization") == f"Bearer {token}" and "x-api-key" not in h for h in sent)
    page.reload()  # the tab stays signed in
    page.get_by_role("heading", name="Deliveries to Good Partner").wait_for()

    stack.admin("DELETE", f"/partners/{partner_id}/portal-tokens")
    page.goto(f"{stack.url}#/?status=failed")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "expired or was revoked" in alert.inner_text()
    assert page.evaluate("sessionStorage.getItem('webhooks-console')") is None
    assert page.get_by_label("Key").is_visible()

    page.goto(f"{stack.url}#portal=wpt_made-up")  # a made-up link: the same words, no session
    page.get_by_role("alert").wait_for()
    assert "expired or was revoked" in page.get_by_role("alert").inner_text()
    assert "wpt_made-up" not in page.url
