"""Portal tokens: issued by the operator, stored hashed, accepted as ``Authorization: Bearer``
on the partner's own routes only, for that partner only, until they expire, are revoked or
the partner is deactivated or deleted. The ingest handler over SecantusDB and moto's SQS
server, and the CLI in-process."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from webhooks.config import load_settings
from webhooks.errors import Conflict
from webhooks.partners.model import Partner
from webhooks.partners.portal_tokens import PortalTokens
from webhooks.partners.store import PartnerStore
from webhooks.services.portal import PortalService
from webhooks.services.schemas import PortalTokenRequest
from webhooks.store.delivery_log import AttemptRecord, DeliveryLog

from conftest import Stack
from support import IngestApi, api_event
from support import run_cli as run

ATTACKER = "198.51.100.23"


def tokens_path(partner_id: str) -> str:
    return f"/api/v1/admin/partners/{partner_id}/portal-tokens"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def issue(api: IngestApi, partner_id: str, body: Any = None) -> str:
    status, issued, _ = api("POST", tokens_path(partner_id), body)
    assert status == 201, issued
    token: str = issued["token"]
    return token


def own_deliveries(api: IngestApi, token: str, source: str = "203.0.113.10") -> Any:
    return api("GET", "/api/v1/deliveries", headers=bearer(token), admin=False, source_ip=source)


@pytest.fixture
def two(stack: Stack) -> tuple[str, str]:
    """Partners alpha and beta, each with one delivered attempt of its own event."""
    store = stack.store()
    alpha = store.create("alpha", "https://a.example/h", ["order.*"]).partner.id
    beta = store.create("beta", "https://b.example/h", ["order.*"]).partner.id
    now = datetime.now(UTC)
    records = [
        AttemptRecord(f"event_{who}", "order.created", pid, 1, "delivered", 200, 5, None, None, b"", now)
        for who, pid in (("alpha", alpha), ("beta", beta))
    ]
    DeliveryLog(stack.db).flush([r.document() for r in records])
    return alpha, beta


def test_a_token_reads_its_partners_own_routes_and_nothing_of_another_partner(
    api: IngestApi, two: tuple[str, str]
) -> None:
    alpha, beta = two
    status, issued, headers = api("POST", tokens_path(alpha))
    assert status == 201 and set(issued) == {"token", "expiresAt", "url"}, issued
    assert headers["Cache-Control"] == "no-store"
    token = issued["token"]
    assert token.startswith("wpt_") and issued["url"].endswith(f"/console#portal={token}")

    status, page, _ = own_deliveries(api, token)
    assert status == 200 and [d["partnerId"] for d in page["deliveries"]] == [alpha], page
    status, me, _ = api("GET", "/api/v1/deliveries/endpoint", headers=bearer(token), admin=False)
    assert status == 200 and (me["partnerId"], me["name"]) == (alpha, "alpha")
    path = "/api/v1/deliveries/events/event_alpha"
    assert api("GET", path, headers=bearer(token), admin=False).status == 200
    # beta's event, as far as alpha's token can tell, does not exist
    path = "/api/v1/deliveries/events/event_beta"
    assert api("GET", path, headers=bearer(token), admin=False).status == 404


def test_the_link_opens_the_console_where_the_api_was_reached(
    stack: Stack, function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_API_KEY", "portal-admin")
    partner_id = stack.store().create("alpha", "https://a.example/h", []).partner.id
    handler = function("ingest")
    path = tokens_path(partner_id)
    # behind API Gateway: its host, https, and the stage before the route's path
    headers = {"X-Admin-Key": "portal-admin", "Host": "abc.execute-api.eu-west-1.amazonaws.com"}
    event = api_event(None, method="POST", path=path, headers={**headers, "X-Forwarded-Proto": "https"})
    event["requestContext"]["path"] = f"/Prod{path}"
    issued = json.loads(handler(event)["body"])
    expected = f"https://abc.execute-api.eu-west-1.amazonaws.com/Prod/console#portal={issued['token']}"
    assert issued["url"] == expected
    # locally: plain http, no stage; a Host that is no host name is not copied into the link
    local = api_event(None, method="POST", path=path, headers={**headers, "Host": "127.0.0.1:3000"})
    local["requestContext"]["path"] = path
    assert json.loads(handler(local)["body"])["url"].startswith("http://127.0.0.1:3000/console#portal=wpt_")
    odd = api_event(None, method="POST", path=path, headers={**headers, "Host": "evil.example/x?"})
    odd["requestContext"]["path"] = path
    assert json.loads(handler(odd)["body"])["url"].startswith(
        "http://example.execute-api.us-east-1.amazonaws.com/console#portal="
    )


def test_an_expired_token_is_refused(stack: Stack, api: IngestApi, two: tuple[str, str]) -> None:
    alpha, _ = two
    token = issue(api, alpha, {"ttlSeconds": 60})
    assert own_deliveries(api, token).status == 200
    # its minute is over (the TTL monitor may not have removed it yet: the check must not rely on it)
    past = datetime.now(UTC) - timedelta(seconds=1)
    stack.db["portalTokens"].update_one({}, {"$set": {"expiresAt": past}})
    status, body, _ = own_deliveries(api, token)
    assert status == 401 and body == {"error": "Invalid or expired portal token"}


def test_tokens_expire_at_their_ttl_by_the_stores_clock(stack: Stack) -> None:
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    clock = [now]
    tokens = PortalTokens(stack.db, clock=lambda: clock[0])
    issued = tokens.issue("p1", timedelta(seconds=90))
    assert issued.expires_at == now + timedelta(seconds=90)
    clock[0] = now + timedelta(seconds=89)
    assert tokens.partner_id(issued.token) == "p1"
    clock[0] = now + timedelta(seconds=90)
    assert tokens.partner_id(issued.token) is None


def test_a_made_up_token_is_refused(api: IngestApi, two: tuple[str, str]) -> None:
    issue(api, two[0])
    for made_up in ("wpt_" + secrets.token_urlsafe(32), "pk_not-a-token", "", "wpt_" + "x" * 500):
        status, body, _ = own_deliveries(api, made_up)
        assert status == 401 and "error" in body, (made_up, body)
    # an API key is not a bearer token either, and a bearer token is not an API key
    status, _, _ = api("GET", "/api/v1/deliveries", headers={"X-API-Key": issue(api, two[0])}, admin=False)
    assert status == 401


def test_revoking_refuses_every_token_of_that_partner_and_no_other(
    api: IngestApi, two: tuple[str, str]
) -> None:
    alpha, beta = two
    first, second, betas = issue(api, alpha), issue(api, alpha), issue(api, beta)
    assert own_deliveries(api, first).status == 200
    status, body, _ = api("DELETE", tokens_path(alpha))
    assert status == 200 and body == {"revoked": 2}
    assert own_deliveries(api, first).status == 401 and own_deliveries(api, second).status == 401
    assert own_deliveries(api, betas).status == 200
    assert api("DELETE", tokens_path(alpha)).body == {"revoked": 0}


def test_a_deactivated_or_deleted_partners_token_is_refused(
    stack: Stack, api: IngestApi, two: tuple[str, str]
) -> None:
    alpha, beta = two
    alphas, betas = issue(api, alpha), issue(api, beta)
    # deactivated where nothing revokes its tokens (the API's PATCH would): the token is
    # still stored, and the partner's state refuses it
    stack.store().set_active(alpha, False)
    assert stack.db["portalTokens"].count_documents({"partnerId": alpha}) == 1
    assert own_deliveries(api, alphas).status == 401
    # and no new one is issued for it: it would not work
    status, body, _ = api("POST", tokens_path(alpha))
    assert status == 409 and "inactive" in body["error"]
    stack.store().delete(beta)  # likewise: its token stays, the partner is gone
    assert own_deliveries(api, betas).status == 401


def test_deactivating_a_partner_revokes_its_tokens_so_reactivating_brings_none_back(
    stack: Stack, api: IngestApi, two: tuple[str, str]
) -> None:
    alpha, beta = two
    alphas, betas = issue(api, alpha), issue(api, beta)
    assert api("PATCH", f"/api/v1/admin/partners/{alpha}", {"isActive": False}).status == 200
    assert api("PATCH", f"/api/v1/admin/partners/{alpha}", {"isActive": True}).status == 200
    assert own_deliveries(api, alphas).status == 401
    assert stack.db["portalTokens"].count_documents({"partnerId": alpha}) == 0
    assert own_deliveries(api, betas).status == 200  # another partner's stay
    assert own_deliveries(api, issue(api, alpha)).status == 200  # a new link works


class DeactivatedMeanwhile(PartnerStore):
    """A store whose partner is deactivated right after the first read: as a PATCH that lands
    between the issuer's check and its insert."""

    reads = 0

    def get(self, partner_id: str) -> Partner:
        self.reads += 1
        found = super().get(partner_id)
        if self.reads == 1:
            self.set_active(partner_id, False)
        return found


def test_a_token_issued_while_its_partner_is_deactivated_is_refused_and_not_kept(
    stack: Stack, two: tuple[str, str]
) -> None:
    alpha, _ = two
    portal = PortalService(DeactivatedMeanwhile(stack.db), PortalTokens(stack.db), None)
    with pytest.raises(Conflict, match="inactive"):
        portal.issue(alpha, PortalTokenRequest(ttlSeconds=600), "https://api.example")
    assert stack.db["portalTokens"].count_documents({"partnerId": alpha}) == 0


def test_deleting_a_partner_removes_its_tokens(stack: Stack, api: IngestApi, two: tuple[str, str]) -> None:
    alpha, beta = two
    issue(api, alpha), issue(api, beta)
    assert api("DELETE", f"/api/v1/admin/partners/{alpha}").status == 200
    assert stack.db["portalTokens"].count_documents({"partnerId": alpha}) == 0
    assert stack.db["portalTokens"].count_documents({"partnerId": beta}) == 1


def test_an_unknown_partner_is_a_404(api: IngestApi) -> None:
    for method in ("POST", "DELETE"):
        status, body, _ = api(method, tokens_path("0123456789abcdef01234567"))
        assert status == 404 and "error" in body


@pytest.mark.parametrize("ttl", [0, 86_401, -1, "an hour", 1.5, None])
def test_a_ttl_out_of_bounds_is_a_400_naming_the_field(
    api: IngestApi, two: tuple[str, str], ttl: Any
) -> None:
    status, body, _ = api("POST", tokens_path(two[0]), {"ttlSeconds": ttl})
    assert status == 400 and "ttlSeconds" in body["error"], body


def test_the_ttl_defaults_to_an_hour_and_may_be_a_second_to_a_day(
    api: IngestApi, two: tuple[str, str]
) -> None:
    for body, seconds in (
        (None, 3600),
        ({}, 3600),
        ({"ttlSeconds": 1}, 1),
        ({"ttlSeconds": 60}, 60),
        ({"ttlSeconds": 86_400}, 86_400),
    ):
        before = datetime.now(UTC)
        status, issued, _ = api("POST", tokens_path(two[0]), body)
        assert status == 201, issued
        expires = datetime.fromisoformat(issued["expiresAt"])
        assert (
            before + timedelta(seconds=seconds - 1)
            <= expires
            <= datetime.now(UTC) + timedelta(seconds=seconds)
        )


def test_a_token_is_stored_only_as_its_sha256(stack: Stack, api: IngestApi, two: tuple[str, str]) -> None:
    token = issue(api, two[0])
    [stored] = list(stack.db["portalTokens"].find({}, {"_id": 0}))
    assert set(stored) == {"tokenHash", "partnerId", "expiresAt", "createdAt"}
    assert stored["tokenHash"] == hashlib.sha256(token.encode()).hexdigest()
    assert stored["partnerId"] == two[0]
    assert token not in json.dumps(stored, default=str)
    indexes = stack.db["portalTokens"].index_information()
    assert any(i["key"] == [("tokenHash", 1)] and i.get("unique") for i in indexes.values())
    assert any(i["key"] == [("expiresAt", 1)] and i.get("expireAfterSeconds") == 0 for i in indexes.values())


def test_a_token_is_no_credential_for_admin_routes_or_publishing(
    api: IngestApi, two: tuple[str, str]
) -> None:
    alpha, _ = two
    token = issue(api, alpha)
    for method, path in (
        ("GET", "/api/v1/admin/partners"),
        ("GET", f"/api/v1/admin/partners/{alpha}"),
        ("POST", tokens_path(alpha)),
        ("DELETE", tokens_path(alpha)),
        ("GET", "/api/v1/admin/deliveries"),
    ):
        status, body, _ = api(method, path, headers=bearer(token), admin=False)
        assert status == 401 and "error" in body, (path, body)
    events = [{"eventType": "order.created", "data": {}}]
    status, _, _ = api("POST", "/api/v1/events", events, headers=bearer(token), admin=False)
    assert status == 401
    assert own_deliveries(api, token).status == 200  # not revoked by any of that


def test_failed_api_keys_never_turn_a_tokens_401_into_a_429(
    stack: Stack, api: IngestApi, two: tuple[str, str]
) -> None:
    token = issue(api, two[0], {"ttlSeconds": 60})
    for _ in range(12):  # past PARTNER_AUTH_MAX_FAILURES (10): this source's keys are throttled
        wrong = api(
            "GET", "/api/v1/deliveries", headers={"X-API-Key": "wrong"}, admin=False, source_ip=ATTACKER
        )
    assert wrong.status == 429
    stack.db["portalTokens"].update_one({}, {"$set": {"expiresAt": datetime.now(UTC) - timedelta(seconds=1)}})
    # an expired token from that same source is still the contract's 401, not the keys' 429
    status, body, _ = own_deliveries(api, token, source=ATTACKER)
    assert status == 401 and body == {"error": "Invalid or expired portal token"}
    assert own_deliveries(api, "wpt_guess", source=ATTACKER).status == 401


def test_failed_tokens_have_their_own_budget_per_source(api: IngestApi, two: tuple[str, str]) -> None:
    token = issue(api, two[0])
    for _ in range(load_settings().portal_token_max_failures):
        assert own_deliveries(api, "wpt_guess", source=ATTACKER).status == 401
    status, body, headers = own_deliveries(api, "wpt_guess", source=ATTACKER)
    assert status == 429 and int(headers["Retry-After"]) >= 1 and "error" in body
    # the right token from that source still signs in: no one is locked out by someone else's guesses
    assert own_deliveries(api, token, source=ATTACKER).status == 200
    # and the API keys' budget of that source was not spent by the tokens
    wrong = api("GET", "/api/v1/deliveries", headers={"X-API-Key": "wrong"}, admin=False, source_ip=ATTACKER)
    assert wrong.status == 401


def test_no_token_reaches_the_logs(
    api: IngestApi, two: tuple[str, str], caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    token = issue(api, two[0])
    own_deliveries(api, token)
    guess = "wpt_" + secrets.token_urlsafe(32)
    own_deliveries(api, guess)
    api("DELETE", tokens_path(two[0]))
    own_deliveries(api, token)
    captured = capfd.readouterr()  # read once: a second read returns only what came after it
    logged = caplog.text + captured.out + captured.err
    assert "portal token refused" in logged
    assert token not in logged and guess not in logged and token[4:20] not in logged


def test_the_cli_prints_a_link_whose_token_works(
    stack: Stack, api: IngestApi, two: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    alpha, _ = two
    base = "http://127.0.0.1:3000"
    before = datetime.now(UTC)
    code, issued, err = run(capsys, "partners", "portal-link", alpha, "--ttl", "30m", "--api-url", base)
    assert code == 0 and issued["url"].startswith(f"{base}/console#portal=wpt_"), (issued, err)
    assert "signed in as the partner until" in err
    expires = datetime.fromisoformat(issued["expiresAt"])
    assert before + timedelta(minutes=29) < expires <= datetime.now(UTC) + timedelta(minutes=30)
    token = issued["url"].split("#portal=", 1)[1]
    status, page, _ = own_deliveries(api, token)
    assert status == 200 and [d["partnerId"] for d in page["deliveries"]] == [alpha]

    code, revoked, _ = run(capsys, "partners", "portal-revoke", alpha)
    assert code == 0 and revoked == {"revoked": 1}
    assert own_deliveries(api, token).status == 401


@pytest.mark.parametrize(
    ("ttl", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("24h", 86_400), ("600", 600)]
)
def test_the_cli_reads_a_ttl_in_seconds_minutes_or_hours(
    stack: Stack, two: tuple[str, str], capsys: pytest.CaptureFixture[str], ttl: str, seconds: int
) -> None:
    before = datetime.now(UTC)
    code, issued, _ = run(capsys, "partners", "portal-link", two[0], "--ttl", ttl, "--api-url", "http://x")
    assert code == 0
    expires = datetime.fromisoformat(issued["expiresAt"])
    assert (
        before + timedelta(seconds=seconds - 1) <= expires <= datetime.now(UTC) + timedelta(seconds=seconds)
    )


@pytest.mark.parametrize(
    ("ttl", "words"), [("25h", "ttlSeconds"), ("0s", "ttlSeconds"), ("2d", "ttlSeconds"), ("1w", "--ttl")]
)
def test_the_cli_refuses_a_ttl_out_of_bounds(
    stack: Stack, two: tuple[str, str], capsys: pytest.CaptureFixture[str], ttl: str, words: str
) -> None:
    code, _, err = run(capsys, "partners", "portal-link", two[0], "--ttl", ttl, "--api-url", "http://x")
    assert code != 0 and words in err
    assert stack.db["portalTokens"].count_documents({}) == 0


def test_the_cli_without_an_api_url_issues_the_token_and_says_how_to_make_the_link(
    stack: Stack,
    api: IngestApi,
    two: tuple[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    monkeypatch.setenv("WEBHOOKS_LOCAL_DIR", str(tmp_path))  # no running `webhooks local`
    monkeypatch.delenv("WEBHOOKS_API_URL", raising=False)
    code, issued, err = run(capsys, "partners", "portal-link", two[0])
    assert code == 0 and issued["token"].startswith("wpt_")
    assert issued["url"] == f"/console#portal={issued['token']}"  # relative to the API's root
    assert "--api-url" in err and "WEBHOOKS_API_URL" in err
    assert own_deliveries(api, issued["token"]).status == 200  # the token alone works


def test_the_api_document_declares_the_bearer_scheme_on_the_partners_own_routes() -> None:
    from webhooks.api import openapi_document

    doc = openapi_document()
    assert doc["components"]["securitySchemes"]["PortalToken"]["scheme"] == "bearer"
    for path in ("/api/v1/deliveries", "/api/v1/deliveries/endpoint"):
        assert doc["paths"][path]["get"]["security"] == [{"ApiKey": []}, {"PortalToken": []}]
    issued = doc["paths"]["/api/v1/admin/partners/{partner_id}/portal-tokens"]["post"]
    assert issued["security"] == [{"AdminKey": []}]
    schema = issued["responses"]["201"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/PortalToken"}


def test_only_a_bearer_authorization_is_read_as_a_token() -> None:
    from webhooks.api.auth import bearer_token, partner_route

    assert bearer_token({"authorization": "Bearer wpt_abc"}) == "wpt_abc"
    assert bearer_token({"authorization": "bearer  wpt_abc "}) == "wpt_abc"
    assert bearer_token({"authorization": "Basic dXNlcjpwYXNz"}) is None
    assert bearer_token({}) is None
    assert partner_route("/api/v1/deliveries") and partner_route("/api/v1/endpoints/abc/rotate-secret")
    assert not partner_route("/api/v1/deliveriesx") and not partner_route("/api/v1/admin/deliveries")


def test_a_partners_file_that_deactivates_a_partner_revokes_its_tokens(stack: Stack, tmp_path: Any) -> None:
    from webhooks_cli.runtime import load_partners_file

    entry = {"name": "filed", "webhookUrl": "https://f.example/h", "apiKey": "pk_filed_1", "secretKey": "s"}
    path = tmp_path / "partners.json"
    path.write_text(json.dumps([entry]))
    load_partners_file(stack.store(), path)
    partner_id = str(stack.db["partners"].find_one({"name": "filed"})["_id"])
    PortalTokens(stack.db).issue(partner_id, timedelta(hours=1))
    path.write_text(json.dumps([{**entry, "isActive": False}]))
    load_partners_file(stack.store(), path)
    assert stack.db["portalTokens"].count_documents({"partnerId": partner_id}) == 0
