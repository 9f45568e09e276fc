"""Sign-up, login (with throttling), refresh-token rotation and reuse detection, logout, and how
access tokens are checked. Everything goes through HTTP, as a client would see it."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import secrets
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import httpx
import pytest
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from joserfc import jwt
from joserfc.jwk import OctKey

from pane.app import create_app
from pane.services import security
from pane.services.security import token_digest
from tests.conftest import Servers, make_settings
from tests.factories import PASSWORD, Account, assert_problem, bearer, unique_email

ALL_PERMISSIONS = [
    "audit:read",
    "changes:read",
    "content:read",
    "keys:manage",
    "leads:read",
    "leads:write",
    "links:read",
    "links:write",
    "members:read",
    "members:write",
    "workspace:write",
]


async def refresh(
    http: httpx.AsyncClient, token: str, workspace_id: uuid.UUID | None = None
) -> httpx.Response:
    payload: dict[str, Any] = {"refresh_token": token}
    if workspace_id is not None:
        payload["workspace_id"] = str(workspace_id)
    return await http.post("/v1/auth/refresh", json=payload)


async def join(http: httpx.AsyncClient, owner: Account, guest: Account, role: str) -> None:
    """``guest`` (already signed up) joins ``owner``'s workspace through an invitation."""
    invited = await http.post(
        "/v1/invitations", json={"email": guest.email, "role": role}, headers=owner.headers
    )
    assert invited.status_code == 201, invited.text
    accepted = await http.post(
        "/v1/invitations/accept", json={"token": invited.json()["token"]}, headers=guest.headers
    )
    assert accepted.status_code == 200, accepted.text


# --- sign-up -------------------------------------------------------------------------------


async def test_signup_creates_owner_workspace_and_signs_in(http, settings):
    email = unique_email("signup")
    response = await http.post(
        "/v1/auth/signup",
        json={
            "email": email,
            "password": PASSWORD,
            "name": "Ada Lovelace",
            "workspace_name": "Analytical Engines",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["user"]["email"] == email
    assert body["user"]["name"] == "Ada Lovelace"
    assert "password" not in json.dumps(body["user"])
    assert body["workspace"]["name"] == "Analytical Engines"
    assert body["workspace"]["role"] == "owner"
    tokens = body["tokens"]
    assert tokens["token_type"] == "Bearer"
    assert tokens["workspace_id"] == body["workspace"]["id"]
    assert tokens["expires_in"] == settings.access_token_ttl_seconds
    assert tokens["access_token"] != tokens["refresh_token"]

    me = await http.get("/v1/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    me_body = me.json()
    assert me_body["kind"] == "user"
    assert me_body["user"]["id"] == body["user"]["id"]
    assert me_body["user"]["email"] == email
    assert me_body["workspace"]["id"] == body["workspace"]["id"]
    assert me_body["workspace"]["name"] == "Analytical Engines"
    assert me_body["workspace"]["role"] == "owner"
    assert [ws["id"] for ws in me_body["workspaces"]] == [body["workspace"]["id"]]
    assert me_body["permissions"] == ALL_PERMISSIONS

    # The refresh token from sign-up is a real one.
    renewed = await refresh(http, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text


async def test_signup_with_taken_email_in_other_case_conflicts(http, api, admin_db):
    owner = await api.signup()
    response = await http.post(
        "/v1/auth/signup",
        json={
            "email": owner.email.upper(),
            "password": PASSWORD,
            "name": "Impostor",
            "workspace_name": "Elsewhere",
        },
    )
    body = assert_problem(response, 409, "conflict")
    assert "already exists" in body["detail"]
    count = await admin_db.fetchval(
        "SELECT count(*) FROM users WHERE lower(email) = lower($1)", owner.email
    )
    assert count == 1
    # The original account is untouched: its password still works.
    assert (await api.login(owner.email))["workspace_id"] == str(owner.workspace_id)


async def test_concurrent_signups_with_one_email_give_one_account(http, admin_db):
    email = unique_email("race")

    def payload(name: str) -> dict[str, str]:
        return {"email": email, "password": PASSWORD, "name": name, "workspace_name": name}

    first, second = await asyncio.gather(
        http.post("/v1/auth/signup", json=payload("First")),
        http.post("/v1/auth/signup", json=payload("Second")),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409], (
        first.text,
        second.text,
    )
    loser = first if first.status_code == 409 else second
    assert_problem(loser, 409, "conflict")
    assert await admin_db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"password": "short"}, "body.password"),
        ({"email": "not-an-email"}, "body.email"),
        ({"name": "   "}, "body.name"),
        ({"is_admin": True}, "body.is_admin"),
        ({"workspace_name": None}, "body.workspace_name"),
    ],
    ids=["weak-password", "bad-email", "blank-name", "unknown-field", "missing-workspace"],
)
async def test_signup_validation_names_the_field(http, admin_db, change, field):
    email = unique_email("invalid")
    payload: dict[str, Any] = {
        "email": email,
        "password": PASSWORD,
        "name": "Val Idator",
        "workspace_name": "Checks Ltd",
    }
    payload.update(change)
    payload = {key: value for key, value in payload.items() if value is not None}
    body = assert_problem(await http.post("/v1/auth/signup", json=payload), 422, "validation-error")
    assert field in [error["field"] for error in body["errors"]], body
    assert field in body["detail"]
    assert await admin_db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0


async def test_signup_with_malformed_json_is_a_bad_request(http):
    response = await http.post(
        "/v1/auth/signup", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-json")


# --- login ---------------------------------------------------------------------------------


async def test_login_issues_tokens_for_first_workspace(http, api):
    user = await api.signup(workspace="Home")
    other = await api.signup(workspace="Partner")
    await join(http, other, user, "member")

    response = await http.post(
        "/v1/auth/login", json={"email": user.email.upper(), "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["workspace_id"] == str(user.workspace_id)
    me = (await http.get("/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["workspace"]["id"] == str(user.workspace_id)
    assert me["workspace"]["role"] == "owner"
    assert {ws["id"] for ws in me["workspaces"]} == {
        str(user.workspace_id),
        str(other.workspace_id),
    }

    chosen = await api.login(user.email, workspace_id=other.workspace_id)
    assert chosen["workspace_id"] == str(other.workspace_id)
    me = (await http.get("/v1/me", headers=bearer(chosen["access_token"]))).json()
    assert me["workspace"]["id"] == str(other.workspace_id)
    assert me["workspace"]["role"] == "member"
    assert me["permissions"] == [
        "changes:read",
        "content:read",
        "leads:read",
        "leads:write",
        "links:read",
        "members:read",
    ]


async def test_login_to_a_workspace_you_are_not_in_is_forbidden(http, api, admin_db):
    user = await api.signup()
    stranger = await api.signup()
    for target in (stranger.workspace_id, uuid.uuid4()):
        response = await http.post(
            "/v1/auth/login",
            json={"email": user.email, "password": PASSWORD, "workspace_id": str(target)},
        )
        body = assert_problem(response, 403, "forbidden")
        assert str(target) in body["detail"]
        assert "access_token" not in response.text
    # Nothing was issued: only the sign-up's refresh token exists.
    count = await admin_db.fetchval(
        "SELECT count(*) FROM refresh_tokens WHERE user_id = $1", user.user_id
    )
    assert count == 1


async def test_wrong_password_and_unknown_email_fail_identically(http, api, admin_db):
    user = await api.signup()
    wrong_password = await http.post(
        "/v1/auth/login", json={"email": user.email, "password": "not the password"}
    )
    unknown_email = await http.post(
        "/v1/auth/login", json={"email": unique_email("nobody"), "password": "not the password"}
    )
    for response in (wrong_password, unknown_email):
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    assert wrong_password.json() == unknown_email.json()
    assert wrong_password.headers["content-type"] == unknown_email.headers["content-type"]
    # Only the sign-up's refresh token exists: the failed login issued nothing.
    count = await admin_db.fetchval(
        "SELECT count(*) FROM refresh_tokens WHERE user_id = $1", user.user_id
    )
    assert count == 1


async def test_unknown_email_costs_the_same_password_work_as_a_wrong_password(
    http, api, monkeypatch
):
    """Response time must not tell which emails have accounts: both refusals verify one argon2
    hash with the same parameters (counted, not timed)."""
    verified: list[str] = []
    real_verify = security._hasher.verify

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verified.append(str(hash).rsplit("$", 2)[0])  # algorithm, version and cost
            return real_verify(hash, password)

    monkeypatch.setattr(security, "_hasher", CountingHasher())
    user = await api.signup()
    for email in (user.email, unique_email("nobody")):
        response = await http.post(
            "/v1/auth/login", json={"email": email, "password": "not the password"}
        )
        assert_problem(response, 401, "unauthorized")
    assert len(verified) == 2
    assert verified[0] == verified[1]
    assert verified[0].startswith("$argon2id$")


# --- login throttling ------------------------------------------------------------------------

LIMIT = 3


@pytest.fixture(scope="module")
async def limited_app(servers: Servers) -> AsyncIterator[object]:
    application = create_app(
        make_settings(
            servers,
            login_limit_per_account=f"{LIMIT}/minute",
            login_limit_per_ip=f"{LIMIT}/minute",
        )
    )
    async with LifespanManager(application) as manager:
        yield manager.app


@pytest.fixture
async def client_from(limited_app) -> AsyncIterator[Callable[[str], httpx.AsyncClient]]:
    """Clients of the throttled app, each from the client address given."""
    clients: list[httpx.AsyncClient] = []

    def make(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=limited_app, client=(ip, 123))  # type: ignore[arg-type]
        client = httpx.AsyncClient(transport=transport, base_url="http://pane.test")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


def fresh_ip() -> str:
    """An address no earlier run has used, so counters left in Redis cannot interfere."""
    return "10." + ".".join(str(secrets.randbelow(254) + 1) for _ in range(3))


def assert_throttled(response: httpx.Response, kind: str) -> None:
    body = assert_problem(response, 429, "rate-limited")
    assert f"this {kind}" in body["detail"], body
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert "access_token" not in response.text


async def test_login_attempts_are_limited_per_ip(api, client_from):
    first, second = await api.signup(), await api.signup()
    client = client_from(fresh_ip())
    for _ in range(LIMIT):
        response = await client.post(
            "/v1/auth/login", json={"email": first.email, "password": "guessing..."}
        )
        assert_problem(response, 401, "unauthorized")
    # A different account from the same address spends the same address budget, even with the
    # right password.
    blocked = await client.post(
        "/v1/auth/login", json={"email": second.email, "password": PASSWORD}
    )
    assert_throttled(blocked, "ip")
    # Another address is not affected.
    elsewhere = await client_from(fresh_ip()).post(
        "/v1/auth/login", json={"email": second.email, "password": PASSWORD}
    )
    assert elsewhere.status_code == 200, elsewhere.text


async def test_login_attempts_are_limited_per_account_across_ips(api, client_from):
    victim, bystander = await api.signup(), await api.signup()
    for _ in range(LIMIT):
        response = await client_from(fresh_ip()).post(
            "/v1/auth/login", json={"email": victim.email, "password": "guessing..."}
        )
        assert_problem(response, 401, "unauthorized")
    # The account budget holds from a new address, for any spelling of the email, and even
    # for the right password.
    client = client_from(fresh_ip())
    blocked = await client.post(
        "/v1/auth/login", json={"email": victim.email.upper(), "password": PASSWORD}
    )
    assert_throttled(blocked, "account")
    # Other accounts from that address still get in.
    other = await client.post(
        "/v1/auth/login", json={"email": bystander.email, "password": PASSWORD}
    )
    assert other.status_code == 200, other.text


async def test_shutdown_releases_login_limiter_connections(servers):
    """A stopped app leaves no Redis connection of the login limiter behind (a leak would show
    as ResourceWarnings, and with warnings as errors, fail whichever test run logs in)."""
    application = create_app(make_settings(servers))
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://pane.test") as client:
            response = await client.post(
                "/v1/auth/login", json={"email": unique_email(), "password": "whatever"}
            )
            assert_problem(response, 401, "unauthorized")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del application, manager, transport, client, response
        gc.collect()
    leaked = [str(item.message) for item in caught if issubclass(item.category, ResourceWarning)]
    assert leaked == []


# --- refresh rotation, reuse detection, logout ------------------------------------------------


async def test_refresh_rotates_the_pair(http, api):
    user = await api.signup()
    first = await api.login(user.email)
    response = await refresh(http, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["workspace_id"] == str(user.workspace_id)
    me = await http.get("/v1/me", headers=bearer(second["access_token"]))
    assert me.status_code == 200
    assert me.json()["user"]["id"] == str(user.user_id)
    # The new refresh token works once more.
    third = await refresh(http, second["refresh_token"])
    assert third.status_code == 200, third.text


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(http, api):
    user = await api.signup()
    stolen = await api.login(user.email)
    bystander_login = await api.login(user.email)

    rotated = await refresh(http, stolen["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    newest = rotated.json()["refresh_token"]

    replay = await refresh(http, stolen["refresh_token"])
    body = assert_problem(replay, 401, "unauthorized")
    assert "already used" in body["detail"]
    assert replay.headers["www-authenticate"] == "Bearer"

    # The revocation was committed despite the error: the newest token of that login is dead.
    assert_problem(await refresh(http, newest), 401, "unauthorized")
    # Replaying again stays refused.
    assert_problem(await refresh(http, stolen["refresh_token"]), 401, "unauthorized")
    # A separate login of the same user is not affected.
    unaffected = await refresh(http, bystander_login["refresh_token"])
    assert unaffected.status_code == 200, unaffected.text


async def test_logout_revokes_the_family(http, api):
    user = await api.signup()
    login = await api.login(user.email)
    rotated = await refresh(http, login["refresh_token"])
    assert rotated.status_code == 200
    current = rotated.json()["refresh_token"]
    other_login = await api.login(user.email)

    response = await http.post("/v1/auth/logout", json={"refresh_token": current})
    assert response.status_code == 204, response.text
    assert response.content == b""
    body = assert_problem(await refresh(http, current), 401, "unauthorized")
    assert "log in again" in body["detail"]
    # Other sessions keep working.
    assert (await refresh(http, other_login["refresh_token"])).status_code == 200


async def test_logout_with_an_older_token_ends_the_newest_one(http, api):
    user = await api.signup()
    login = await api.login(user.email)
    rotated = await refresh(http, login["refresh_token"])
    assert rotated.status_code == 200
    newest = rotated.json()["refresh_token"]

    response = await http.post("/v1/auth/logout", json={"refresh_token": login["refresh_token"]})
    assert response.status_code == 204, response.text
    assert_problem(await refresh(http, newest), 401, "unauthorized")


async def test_logout_with_unknown_token_is_harmless(http):
    response = await http.post("/v1/auth/logout", json={"refresh_token": "prt_" + "x" * 43})
    assert response.status_code == 204


@pytest.mark.parametrize("token", ["prt_not-a-real-token", "garbage"])
async def test_refresh_with_unknown_token_is_unauthorized(http, token):
    response = await refresh(http, token)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


async def test_expired_refresh_token_is_unauthorized(http, api, admin_db):
    user = await api.signup()
    login = await api.login(user.email)
    await admin_db.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        token_digest(login["refresh_token"]),
    )
    body = assert_problem(await refresh(http, login["refresh_token"]), 401, "unauthorized")
    assert "expired" in body["detail"]


async def test_refresh_can_switch_to_a_joined_workspace(http, api):
    user = await api.signup(workspace="Home")
    host = await api.signup(workspace="Host")
    stranger = await api.signup(workspace="Stranger")

    # Before joining, switching is refused...
    before = await refresh(http, user.refresh_token, host.workspace_id)
    assert str(host.workspace_id) in assert_problem(before, 403, "forbidden")["detail"]
    # ...without burning the refresh token.
    await join(http, host, user, "viewer")
    switched = await refresh(http, user.refresh_token, host.workspace_id)
    assert switched.status_code == 200, switched.text
    tokens = switched.json()
    assert tokens["workspace_id"] == str(host.workspace_id)
    me = (await http.get("/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["workspace"]["id"] == str(host.workspace_id)
    assert me["workspace"]["role"] == "viewer"
    assert me["permissions"] == [
        "changes:read",
        "content:read",
        "leads:read",
        "links:read",
        "members:read",
    ]

    # Without workspace_id the next refresh stays where the last token was.
    stay = await refresh(http, tokens["refresh_token"])
    assert stay.status_code == 200, stay.text
    assert stay.json()["workspace_id"] == str(host.workspace_id)

    foreign = await refresh(http, stay.json()["refresh_token"], stranger.workspace_id)
    assert_problem(foreign, 403, "forbidden")


# --- access tokens ---------------------------------------------------------------------------


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(account: Account, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(account.user_id),
        "wid": str(account.workspace_id),
        "typ": "access",
        "iat": now,
        "exp": now + 300,
    }
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _signing_key(settings) -> OctKey:
    return OctKey.import_key(settings.token_signing_key.get_secret_value().encode())


def _forged(account: Account, settings, **changes: Any) -> str:
    return jwt.encode({"alg": "HS256"}, _claims(account, **changes), _signing_key(settings))


def _expired(account: Account, settings) -> str:
    now = int(time.time())
    return _forged(account, settings, iat=now - 600, exp=now - 60)


def _tampered(account: Account, settings) -> str:
    # A real token whose payload now claims to be someone else; the signature is the original.
    header, _, signature = account.access_token.split(".")
    return f"{header}.{_b64(_claims(account, sub=str(uuid.uuid4())))}.{signature}"


def _other_key(account: Account, settings) -> str:
    return jwt.encode(
        {"alg": "HS256"}, _claims(account), OctKey.import_key(secrets.token_bytes(32))
    )


def _alg_none(account: Account, settings) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(account))}."


def _alg_hs512(account: Account, settings) -> str:
    return jwt.encode(
        {"alg": "HS512"}, _claims(account), _signing_key(settings), algorithms=["HS512"]
    )


def _no_type(account: Account, settings) -> str:
    return _forged(account, settings, typ=None)


def _no_expiry(account: Account, settings) -> str:
    return _forged(account, settings, exp=None)


def _bad_subject(account: Account, settings) -> str:
    return _forged(account, settings, sub="admin")


BAD_TOKENS: dict[str, Callable[[Account, Any], str]] = {
    "expired": _expired,
    "tampered-payload": _tampered,
    "other-signing-key": _other_key,
    "alg-none": _alg_none,
    "alg-hs512": _alg_hs512,
    "missing-typ": _no_type,
    "missing-exp": _no_expiry,
    "non-uuid-subject": _bad_subject,
    "garbage": lambda account, settings: "not.a.jwt",
    "unknown-api-key": lambda account, settings: "pane_" + secrets.token_urlsafe(32),
}


@pytest.fixture(scope="module")
async def token_owner(api) -> Account:
    return await api.signup()


async def test_forged_token_with_the_real_key_is_accepted(http, settings, token_owner):
    # The control for the cases below: a token built the same way, without the defect, works.
    response = await http.get("/v1/me", headers=bearer(_forged(token_owner, settings)))
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == str(token_owner.user_id)


@pytest.mark.parametrize("name", list(BAD_TOKENS))
async def test_bad_access_tokens_are_unauthorized(http, settings, token_owner, name):
    token = BAD_TOKENS[name](token_owner, settings)
    for path in ("/v1/me", "/v1/leads"):
        response = await http.get(path, headers=bearer(token))
        body = assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
        assert body["instance"] == path
        assert "user" not in body


async def test_expired_token_says_so(http, settings, token_owner):
    response = await http.get("/v1/me", headers=bearer(_expired(token_owner, settings)))
    assert "expired" in assert_problem(response, 401, "unauthorized")["detail"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"}],
    ids=["missing", "basic-scheme", "empty-bearer"],
)
async def test_missing_credentials_are_unauthorized(http, headers):
    response = await http.get("/v1/me", headers=headers)
    body = assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in body["detail"]
