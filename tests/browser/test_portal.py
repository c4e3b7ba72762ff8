"""The partner portal in a real browser: a partner signed in by a portal link manages its
endpoints (list, add with the secret shown once, edit with the API's 400 beside the form,
rotate the secret, delete), another partner's endpoint is not found, and the operator sees a
partner's endpoints and issues its portal link. Debian's Chromium driven by Playwright against
a real `webhooks local`, with test_console's stack, browser and helpers.

Screenshots go to .artifacts/console/ (20-29); README shows three of them (docs/console/).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import test_console as console
from standardwebhooks.webhooks import Webhook
from test_console import PHONE, Stack, serious_violations, shot, wait_for

# the console's stack, browser and page fixtures, shared rather than set up twice (pytest
# finds a fixture by its name in this module)
stack, browser, page = console.stack, console.browser, console.page

GOOD = "Good Partner"
OTHER = "Closed Door"  # another partner of the stack


def portal_link(stack: Stack, name: str) -> str:
    issued = stack.admin("POST", f"/partners/{stack.partner_id(name)}/portal-tokens", json={})
    return str(issued["url"])


def open_portal(page: Any, stack: Stack, name: str = GOOD, view: str = "#/endpoints") -> None:
    """Signed in as the partner by a portal link, then at ``view``."""
    page.goto(portal_link(stack, name))
    page.get_by_role("heading", name=f"Deliveries to {name}").wait_for()
    if view:
        page.goto(f"{stack.url}{view}")
        page.locator("main h1").wait_for()


def endpoints_of(stack: Stack, name: str = GOOD) -> list[dict[str, Any]]:
    return list(stack.admin("GET", f"/partners/{stack.partner_id(name)}/endpoints")["endpoints"])


def add_endpoint(stack: Stack, name: str, path: str, **settings: Any) -> dict[str, Any]:
    body = {"url": f"{stack.good.url.rsplit('/', 1)[0]}/{path}", "events": ["order.*"], **settings}
    created = stack.admin("POST", f"/partners/{stack.partner_id(name)}/endpoints", json=body)
    return dict(created)


@pytest.fixture
def accepting(browser: Any) -> Iterator[tuple[Any, list[str]]]:
    """A page whose confirm() dialogs are accepted (and recorded), for deleting."""
    with console.watched_page(browser, accept_dialogs=True) as watched:
        yield watched


def test_a_portal_link_lists_the_partners_endpoints_and_adds_one_whose_secret_is_shown_once(
    stack: Stack,
    page: Any,
) -> None:
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    open_portal(page, stack, view="")
    page.get_by_role("link", name="Endpoints").click()
    page.get_by_role("heading", name="Endpoints").wait_for()
    assert page.locator("nav a[aria-current=page]").inner_text() == "Endpoints"
    rows = page.get_by_role("table").get_by_role("row").filter(has_text=stack.good.url)
    assert rows.count() == 1 and "first" in rows.inner_text()  # its own webhookUrl, listed
    shot(page, "20-portal-endpoints")

    page.get_by_role("link", name="Add endpoint").click()
    page.get_by_role("heading", name="Add endpoint").wait_for()
    url = f"{stack.good.url.rsplit('/', 1)[0]}/big-orders"
    page.get_by_label("URL").fill(url)
    page.get_by_label("Description").fill("<b>Big</b> orders")
    page.get_by_label("Events").fill("order.created, order.paid")
    page.get_by_label("Filter (JSON)").fill('{"data": {"total": {"$gte": 100}}}')
    page.get_by_label("Retry schedule (seconds)").fill("5, 300, 1800")
    shot(page, "21-portal-add-endpoint")
    page.get_by_role("button", name="Add endpoint").click()
    page.get_by_role("heading", name="Endpoint added").wait_for()
    secret = page.locator(".secret-once code.copyable").inner_text()
    assert secret.startswith("whsec_")
    page.get_by_role("button", name="Copy secret").click()
    page.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert secret not in page.url and secret not in (page.evaluate("JSON.stringify(sessionStorage)") or "")
    shot(page, "22-portal-endpoint-added")

    stored = next(e for e in endpoints_of(stack) if e["url"] == url)
    assert stored["events"] == ["order.created", "order.paid"]
    assert stored["filter"] == {"data": {"total": {"$gte": 100}}}
    assert stored["retrySchedule"] == [5, 300, 1800] and stored["description"] == "<b>Big</b> orders"

    page.get_by_role("link", name="Open the endpoint").click()
    page.locator("dd.endpoint-url").wait_for()
    assert page.locator("dd.endpoint-url").inner_text() == url
    assert json.loads(page.locator("pre.endpoint-filter").inner_text()) == stored["filter"]
    assert "5 s, 300 s, 1800 s (4 attempts)" in page.locator("dd.endpoint-schedule").inner_text()
    assert page.locator("b").count() == 0  # the description as text
    assert secret not in page.content()  # shown once: not on its page

    # the secret shown is the one it signs with: a test event, sent from its page
    page.get_by_role("button", name="Send test event").click()
    page.get_by_role("status").filter(has_text="Test event").wait_for()
    hook = wait_for(lambda: next((r for r in stack.good.requests if r.path == "/big-orders"), None))
    assert hook is not None
    assert hook.headers.get("X-Recart-Event-Type") == "webhook.test"
    Webhook(secret).verify(hook.body, hook.headers)
    test_id = hook.headers["webhook-id"]
    # its attempt is listed on this endpoint's page (once the deliverer logged it), not the first's
    logged = f"/partners/{stack.partner_id(GOOD)}/deliveries?limit=200"
    assert wait_for(lambda: any(a["eventId"] == test_id for a in stack.admin("GET", logged)["deliveries"]))
    page.reload()
    attempts = page.get_by_role("table").filter(has=page.locator("caption", has_text="Recent attempts"))
    attempts.get_by_role("link", name=test_id).wait_for()
    assert secret not in page.content()
    shot(page, "23-portal-endpoint")
    first = next(e for e in endpoints_of(stack) if e["first"])
    page.goto(f"{stack.url}#/endpoints/{quote(first['endpointId'])}")
    page.locator("dd.endpoint-url", has_text=stack.good.url).wait_for()
    assert test_id not in page.locator("main").inner_text()
    assert violations == []  # every portal page under the console's policy, as it is


def test_an_invalid_filter_is_refused_with_the_apis_error_beside_the_form_and_nothing_changes(
    stack: Stack,
    page: Any,
) -> None:
    endpoint = add_endpoint(stack, GOOD, "filtered", filter={"eventType": "order.paid"})
    before = next(e for e in endpoints_of(stack) if e["endpointId"] == endpoint["endpointId"])
    open_portal(page, stack, view=f"#/endpoints/{quote(endpoint['endpointId'])}/edit")
    page.get_by_role("heading", name="Edit endpoint").wait_for()
    field = page.get_by_label("Filter (JSON)")
    assert json.loads(field.input_value()) == {"eventType": "order.paid"}

    field.fill("{not json")  # caught in the page: nothing is sent
    page.get_by_role("button", name="Save changes").click()
    alert = page.locator(".form-errors [role=alert]")
    alert.wait_for()
    assert "Filter: not JSON" in alert.inner_text()
    assert field.get_attribute("aria-invalid") == "true"

    field.fill('{"data": {"total": {"$regex": "^1"}}}')  # JSON, but not a filter: the API says so
    with page.expect_response(lambda r: r.request.method == "PATCH") as answered:
        page.get_by_role("button", name="Save changes").click()
    assert answered.value.status == 400
    error = answered.value.json()["error"]
    alert.filter(has_text="Not saved").wait_for()
    assert error in alert.inner_text() and "filter" in error
    assert field.get_attribute("aria-invalid") == "true"
    assert page.get_by_label("URL").get_attribute("aria-invalid") is None
    width, inner = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
    assert width <= inner  # the message wraps beside the form; it does not widen the page
    shot(page, "24-portal-filter-refused")
    after = next(e for e in endpoints_of(stack) if e["endpointId"] == endpoint["endpointId"])
    assert after == before  # a refused change loses nothing and changes nothing

    field.fill('{"data": {"total": {"$gt": 10}}}')
    page.get_by_label("Retry schedule (seconds)").fill("60, 600")
    page.get_by_role("button", name="Save changes").click()
    page.locator("pre.endpoint-filter").wait_for()  # back on the endpoint's page
    saved = next(e for e in endpoints_of(stack) if e["endpointId"] == endpoint["endpointId"])
    assert saved["filter"] == {"data": {"total": {"$gt": 10}}} and saved["retrySchedule"] == [60, 600]
    assert saved["url"] == before["url"] and saved["events"] == before["events"]  # only what changed


def test_rotating_an_endpoints_secret_shows_the_new_one_once(
    stack: Stack,
    page: Any,
) -> None:
    endpoint = add_endpoint(stack, GOOD, "rotated")
    open_portal(page, stack, view=f"#/endpoints/{quote(endpoint['endpointId'])}")
    page.get_by_role("button", name="Rotate secret").click()
    shown = page.locator(".secret-once code.copyable")
    shown.wait_for()
    secret = shown.inner_text()
    assert secret.startswith("whsec_") and secret != endpoint["secretKey"]
    assert "previous secret" in page.locator(".secret-once").inner_text()
    shot(page, "25-portal-secret-rotated")
    page.reload()
    page.locator("dd.endpoint-url").wait_for()
    assert secret not in page.content() and endpoint["secretKey"] not in page.content()


def test_deleting_an_endpoint_asks_first_and_the_first_endpoint_cannot_be_deleted(
    stack: Stack,
    accepting: tuple[Any, list[str]],
) -> None:
    page, confirmed = accepting
    endpoint = add_endpoint(stack, GOOD, "doomed")
    open_portal(page, stack, view=f"#/endpoints/{quote(endpoint['endpointId'])}")
    page.get_by_role("button", name="Delete endpoint").click()
    page.get_by_role("heading", name="Endpoints").wait_for()  # back on the list
    assert confirmed and endpoint["url"] in confirmed[0]
    assert endpoint["url"] not in page.locator("main").inner_text()
    assert all(e["endpointId"] != endpoint["endpointId"] for e in endpoints_of(stack))
    shot(page, "28-portal-endpoints-after-delete")

    first = next(e for e in endpoints_of(stack) if e["first"])
    page.goto(f"{stack.url}#/endpoints/{quote(first['endpointId'])}")
    page.locator("dd.endpoint-url").wait_for()
    assert page.get_by_role("button", name="Delete endpoint").count() == 0
    assert "can be changed, not deleted" in page.locator("main").inner_text()


def test_another_partners_endpoint_is_not_found_from_a_portal(
    stack: Stack,
    page: Any,
) -> None:
    theirs = add_endpoint(stack, OTHER, "not-yours")
    open_portal(page, stack)
    assert theirs["url"] not in page.locator("main").inner_text()  # not in the list
    statuses: list[int] = []
    page.on("response", lambda r: statuses.append(r.status) if "/api/v1/endpoints/" in r.url else None)
    for view in (
        f"#/endpoints/{quote(theirs['endpointId'])}",
        f"#/endpoints/{quote(theirs['endpointId'])}/edit",
    ):
        page.goto(f"{stack.url}{view}")
        page.get_by_role("heading", name="Endpoint not found").wait_for()
        assert theirs["url"] not in page.content()
    assert statuses and set(statuses) == {404}
    assert any(e["endpointId"] == theirs["endpointId"] for e in endpoints_of(stack, OTHER))  # untouched


def test_the_operator_sees_a_partners_endpoints_and_opens_its_portal_link(
    stack: Stack,
    browser: Any,
    page: Any,
) -> None:
    extra = add_endpoint(stack, OTHER, "operator-sees")
    page.goto(stack.url)
    page.get_by_label("Key").fill(stack.admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Overview").wait_for()
    page.goto(f"{stack.url}#/partners/{stack.partner_id(OTHER)}")
    table = page.get_by_role("table").filter(has=page.locator("caption", has_text=f"{OTHER}'s endpoints"))
    table.wait_for()
    assert extra["url"] in table.inner_text() and "first" in table.inner_text()
    table.get_by_role("link", name=extra["url"]).click()
    page.locator("dd.endpoint-url").wait_for()
    assert page.locator("dd.endpoint-url").inner_text() == extra["url"]
    assert page.locator("nav a[aria-current=page]").inner_text() == "Partners"
    assert page.get_by_role("button", name="Replay").count() == 0  # the partner's own, per endpoint

    page.get_by_role("link", name="Back to the partner").click()
    page.get_by_role("button", name="Portal link").click()
    link = page.locator(".portal-link code.copyable")
    link.wait_for()
    url = link.inner_text()
    assert url.startswith(f"{stack.url}#portal=wpt_")
    assert (
        page.get_by_role("link", name="Open the portal in a new tab").get_attribute("rel")
        == "noopener noreferrer"
    )
    shot(page, "26-operator-portal-link")

    portal = browser.new_context()  # the partner's browser: nothing of the operator's
    try:
        theirs = portal.new_page()
        theirs.goto(url)
        theirs.get_by_role("heading", name=f"Deliveries to {OTHER}").wait_for()
        assert theirs.locator("#who").inner_text() == f"Signed in as {OTHER} (partner)"
        theirs.get_by_role("link", name="Endpoints").click()
        theirs.get_by_role("link", name=extra["url"]).wait_for()
    finally:
        portal.close()


def test_the_partners_list_shows_a_disabled_second_endpoint_behind_a_healthy_first_one(
    stack: Stack, page: Any
) -> None:
    # a partner of its own, subscribed to a type no test posts: the stack's partners and its
    # receiver's requests are shared by the module's tests
    base = stack.good.url.rsplit("/", 1)[0]
    created = stack.admin(
        "POST",
        "/partners",
        json={"name": "Two Doors", "webhookUrl": f"{base}/two-doors", "events": ["two.*"]},
    )
    second = add_endpoint(stack, "Two Doors", "two-doors-second", events=["two.*"])
    # as the deliverer disables an endpoint whose attempts have all failed for long enough
    stack.database()["endpoints"].update_one(
        {"_id": second["endpointId"]},
        {"$set": {"endpointDisabledAt": datetime.now(UTC), "endpointDisabledReason": "failing for 5 days"}},
    )
    console.operator(page, stack, "#/partners")
    row = page.get_by_role("row").filter(has_text="Two Doors")
    badge = row.locator(".badge").first
    assert badge.inner_text() == "disabled" and "bad" in (badge.get_attribute("class") or "")
    # its first endpoint alone is healthy: the list's own field says so
    listed = next(
        p for p in stack.admin("GET", "/partners")["partners"] if p["partnerId"] == created["partnerId"]
    )
    assert listed["endpoint"]["status"] != "disabled"


PORTAL_VIEWS: list[tuple[str, Callable[[Stack], str]]] = [
    ("list", lambda s: "#/endpoints"),
    ("new", lambda s: "#/endpoints/new"),
    ("page", lambda s: f"#/endpoints/{quote(next(e for e in endpoints_of(s) if e['first'])['endpointId'])}"),
    (
        "edit",
        lambda s: f"#/endpoints/{quote(next(e for e in endpoints_of(s) if e['first'])['endpointId'])}/edit",
    ),
]


@pytest.mark.parametrize(("name", "view"), PORTAL_VIEWS, ids=[n for n, _ in PORTAL_VIEWS])
def test_portal_pages_have_no_serious_accessibility_violations_and_fit_a_phone(
    stack: Stack,
    browser: Any,
    name: str,
    view: Callable[[Stack], str],
) -> None:
    # axe is injected into the page: a context of its own that lets it past the CSP
    context = browser.new_context(bypass_csp=True, viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        open_portal(page, stack, view=view(stack))
        page.wait_for_load_state("networkidle")
        width, inner = page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
        assert width <= inner, f"{name} scrolls sideways: {width} > {inner}"
        assert page.locator("nav a[aria-current=page]").inner_text() == "Endpoints"
        assert serious_violations(page) == []
        shot(page, f"27-phone-portal-{name}")
    finally:
        context.close()


def test_the_operators_endpoint_pages_have_no_serious_accessibility_violations(
    stack: Stack,
    browser: Any,
) -> None:
    partner_id = stack.partner_id(GOOD)
    first = next(e for e in endpoints_of(stack) if e["first"])
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    try:
        page.goto(stack.url)
        page.get_by_label("Key").fill(stack.admin_key)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Overview").wait_for()
        for view in (
            f"#/partners/{partner_id}",
            f"#/partners/{partner_id}/endpoints/{quote(first['endpointId'])}",
            f"#/partners/{partner_id}/endpoints/new",
        ):
            page.goto(f"{stack.url}{view}")
            page.locator("main h1").wait_for()
            page.wait_for_load_state("networkidle")
            assert serious_violations(page) == [], view
    finally:
        context.close()


def test_a_partner_replays_an_event_and_recovers_failures_from_an_endpoints_page(
    stack: Stack,
    page: Any,
) -> None:
    # Good Partner's first endpoint receives order.* events: one of them, sent again
    event_id = stack.post("order.created")

    # (the stack's receiver serves other endpoints too, on other paths: /hook is this one)
    def received() -> int:
        return sum(r.path == "/hook" and r.headers.get("webhook-id") == event_id for r in stack.good.requests)

    assert wait_for(lambda: received() == 1)
    first = next(e for e in endpoints_of(stack) if e["first"])
    open_portal(page, stack, view=f"#/endpoints/{quote(first['endpointId'])}")
    page.get_by_label("Replay the event (id)").fill(event_id)
    page.get_by_role("button", name="Replay", exact=True).click()
    page.get_by_role("status").filter(has_text=f"Replay of {event_id} queued").wait_for()
    assert wait_for(lambda: received() == 2)

    # Closed Door's endpoint refuses connections: its delivery is dead-lettered, then recovered
    failed = stack.post("shipment.created", {"id": 3})
    closed = stack.partner_id(OTHER)

    def dead_lettered() -> bool:
        return any(
            a["partnerId"] == closed and a["outcome"] == "dead_lettered" for a in stack.attempts(failed)
        )

    assert wait_for(dead_lettered)
    theirs = next(e for e in endpoints_of(stack, OTHER) if e["first"])
    open_portal(page, stack, OTHER, view=f"#/endpoints/{quote(theirs['endpointId'])}")
    page.get_by_label("Recover failed deliveries since").fill("2026-01-01T00:00")
    page.get_by_role("button", name="Recover").click()
    page.get_by_role("status").filter(has_text="Recovery: ").wait_for()
    assert (
        page.get_by_role("status").filter(has_text="Recovery: ").inner_text().startswith("Recovery: 1 resent")
    )
    # the resent delivery is attempted again (and refused again): a second series in the log
    assert wait_for(lambda: sum(a["partnerId"] == closed for a in stack.attempts(failed)) >= 2)


def test_an_endpoints_page_lists_its_own_attempts_however_many_its_partners_other_endpoint_had_since(
    stack: Stack,
    page: Any,
) -> None:
    # a partner of its own (the others' logs stay as their tests expect), whose first endpoint
    # had 250 attempts after the one to its second endpoint: more than the log's largest page
    name = "Busy Partner"
    created = stack.admin(
        "POST", "/partners", json={"name": name, "webhookUrl": stack.good.url, "events": ["order.*"]}
    )
    pid = created["partnerId"]
    second = add_endpoint(stack, name, "busy-second")
    now = datetime.now(UTC)

    def attempt(event_id: str, endpoint_id: str | None, at: datetime) -> dict[str, Any]:
        doc = {
            "eventId": event_id,
            "eventType": "order.created",
            "partnerId": pid,
            "attempt": 1,
            "outcome": "delivered",
            "statusCode": 200,
            "latencyMs": 1.0,
            "responseBody": "",
            "timestamp": at,
        }
        return {**doc, "endpointId": endpoint_id} if endpoint_id else doc  # None: before endpoints

    to_second, before_endpoints = "event_busy_second", "event_busy_before_endpoints"
    busy = [attempt(f"event_busy_{n}", f"ep_{pid}", now - timedelta(seconds=n)) for n in range(250)]
    stack.database()["deliveryAttempts"].insert_many(
        [
            *busy,
            attempt(to_second, second["endpointId"], now - timedelta(minutes=10)),
            attempt(before_endpoints, None, now - timedelta(minutes=20)),
        ]
    )
    attempts = page.get_by_role("table").filter(has=page.locator("caption", has_text="Recent attempts"))
    # the operator's page of the first endpoint: its newest attempts, none of the second's
    console.operator(page, stack, f"#/partners/{pid}/endpoints/{quote(f'ep_{pid}')}")
    attempts.get_by_role("link", name="event_busy_0", exact=True).wait_for()
    assert to_second not in page.locator("main").inner_text()
    # the partner's page of the second endpoint: its attempt, older than the first's 250
    open_portal(page, stack, name, view=f"#/endpoints/{quote(second['endpointId'])}")
    attempts.get_by_role("link", name=to_second).wait_for()
    assert "event_busy_1" not in attempts.inner_text()


def test_a_url_whose_token_is_masked_is_not_saved_with_the_mask(
    stack: Stack,
    page: Any,
) -> None:
    endpoint = add_endpoint(stack, GOOD, "tokened?token=s3cret")
    open_portal(page, stack, view=f"#/endpoints/{quote(endpoint['endpointId'])}/edit")
    url = page.get_by_label("URL")
    assert url.input_value().endswith("/tokened?***")  # the API never shows the query
    url.fill(url.input_value().replace("/tokened", "/moved"))
    page.get_by_role("button", name="Save changes").click()
    alert = page.locator(".form-errors [role=alert]")
    alert.wait_for()
    assert "type all of it" in alert.inner_text() and url.get_attribute("aria-invalid") == "true"
    stored = next(e for e in endpoints_of(stack) if e["endpointId"] == endpoint["endpointId"])
    assert stored["url"].endswith("/tokened?***")  # unchanged: still its own query

    page.get_by_label("Description").fill("kept its token")  # other settings save as usual
    url.fill(endpoint["url"])
    page.get_by_role("button", name="Save changes").click()
    page.locator("dd.endpoint-url").wait_for()
    stored = next(e for e in endpoints_of(stack) if e["endpointId"] == endpoint["endpointId"])
    assert stored["description"] == "kept its token"
    page.get_by_role("button", name="Send test event").click()  # still sent to its own URL
    assert wait_for(lambda: any(r.path == "/tokened?token=s3cret" for r in stack.good.requests))
