"""Workspace API keys: who may issue them, what a key can and cannot do, revocation, expiry,
and that the secret is shown exactly once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories import Account, Api, assert_problem, bearer, error_fields, unique_email

GRANTABLE = [
    "audit:read",
    "changes:read",
    "content:read",
    "leads:read",
    "leads:write",
    "links:read",
    "links:write",
    "members:read",
]


async def create_key(http: httpx.AsyncClient, account: Account, **fields: Any) -> httpx.Response:
    payload = {"name": "crm", "scopes": ["leads:read"], **fields}
    return await http.post("/v1/api-keys", json=payload, headers=account.headers)


async def audit_rows(admin_db, workspace_id: uuid.UUID, action: str) -> list[dict[str, Any]]:
    rows = await admin_db.fetch(
        "SELECT actor_type, actor_id, target_type, target_id, details FROM audit_log"
        " WHERE workspace_id = $1 AND action = $2 ORDER BY created_at, id",
        workspace_id,
        action,
    )
    return [{**dict(row), "details": json.loads(row["details"])} for row in rows]


async def seeded_workspace(api: Api) -> tuple[Account, uuid.UUID]:
    owner = await api.signup()
    vendor = await api.new_vendor()
    await api.link(owner, vendor)
    [lead_id] = await api.seed_leads(owner.workspace_id, vendor, 1)
    return owner, lead_id


@pytest.fixture(scope="module")
async def staff(api: Api) -> dict[str, Account]:
    """One workspace's owner, admin, member and viewer."""
    owner = await api.signup()
    people = {"owner": owner}
    for role in ("admin", "member", "viewer"):
        people[role] = await api.member(owner, role)
    return people


@pytest.fixture(scope="module")
async def keyless(api: Api) -> Account:
    """An owner whose workspace must never get a key: for requests that are refused."""
    return await api.signup()


async def keys_in(admin_db, workspace_id: uuid.UUID) -> int:
    return int(
        await admin_db.fetchval(
            "SELECT count(*) FROM api_keys WHERE workspace_id = $1", workspace_id
        )
    )


@pytest.mark.parametrize(
    ("role", "allowed"), [("owner", True), ("admin", True), ("member", False), ("viewer", False)]
)
async def test_only_owners_and_admins_issue_keys(http, admin_db, staff, role, allowed):
    actor = staff[role]
    before = await keys_in(admin_db, actor.workspace_id)
    response = await create_key(http, actor, name=f"by {role}")
    if allowed:
        assert response.status_code == 201, response.text
    else:
        assert "keys:manage" in assert_problem(response, 403, "forbidden")["detail"]
    assert await keys_in(admin_db, actor.workspace_id) == before + (1 if allowed else 0)
    listed = await http.get("/v1/api-keys", headers=staff["owner"].headers)
    assert (f"by {role}" in [key["name"] for key in listed.json()["items"]]) is allowed


async def test_key_is_shown_once_and_listed_by_prefix(http, api, admin_db):
    owner = await api.signup()
    expires = datetime.now(UTC) + timedelta(days=30)
    response = await create_key(
        http,
        owner,
        name="HubSpot sync",
        scopes=["leads:write", "leads:read", "leads:read"],
        expires_at=expires.isoformat(),
    )
    assert response.status_code == 201, response.text
    issued = response.json()
    key = issued["key"]
    assert key.startswith("pane_")
    assert key.startswith(issued["prefix"])
    assert len(issued["prefix"]) < len(key)
    assert issued["name"] == "HubSpot sync"
    assert issued["scopes"] == ["leads:read", "leads:write"]
    assert datetime.fromisoformat(issued["expires_at"]) == expires
    assert issued["revoked_at"] is None
    assert issued["last_used_at"] is None

    listed = await http.get("/v1/api-keys", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()["items"]
    assert entry["id"] == issued["id"]
    assert entry["prefix"] == issued["prefix"]
    assert "key" not in entry
    assert key not in listed.text
    # Not stored in the clear either.
    stored = await admin_db.fetchrow(
        "SELECT * FROM api_keys WHERE workspace_id = $1", owner.workspace_id
    )
    assert key not in json.dumps({name: str(value) for name, value in stored.items()})

    [created] = await audit_rows(admin_db, owner.workspace_id, "api_key.created")
    assert created["actor_type"] == "user"
    assert created["actor_id"] == owner.user_id
    assert created["target_id"] == issued["id"]
    assert created["details"]["scopes"] == ["leads:read", "leads:write"]
    assert key not in json.dumps(created["details"])


async def test_read_scoped_key_reads_but_cannot_write(http, api):
    owner, lead_id = await seeded_workspace(api)
    key = await api.api_key(owner, ["leads:read"])

    listed = await http.get("/v1/leads", headers=bearer(key))
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [str(lead_id)]
    one = await http.get(f"/v1/leads/{lead_id}", headers=bearer(key))
    assert one.status_code == 200, one.text

    patched = await http.patch(
        f"/v1/leads/{lead_id}", json={"notes": "from a key"}, headers=bearer(key)
    )
    assert "leads:write" in assert_problem(patched, 403, "forbidden")["detail"]
    links = await http.get("/v1/links", headers=bearer(key))
    assert "links:read" in assert_problem(links, 403, "forbidden")["detail"]

    me = await http.get("/v1/me", headers=bearer(key))
    assert me.status_code == 200, me.text
    assert me.json()["kind"] == "api_key"
    assert me.json()["workspace"]["id"] == str(owner.workspace_id)
    assert me.json()["permissions"] == ["leads:read"]
    assert me.json().get("user") is None


async def test_write_scoped_key_can_update_leads(http, api, admin_db):
    owner, lead_id = await seeded_workspace(api)
    key = await api.api_key(owner, ["leads:read", "leads:write"])
    patched = await http.patch(
        f"/v1/leads/{lead_id}", json={"notes": "from a key"}, headers=bearer(key)
    )
    assert patched.status_code == 200, patched.text
    notes = await admin_db.fetchval(
        "SELECT notes FROM leads WHERE workspace_id = $1 AND id = $2", owner.workspace_id, lead_id
    )
    assert notes == "from a key"


async def test_key_only_sees_its_own_workspace(http, api):
    mine, _ = await seeded_workspace(api)
    theirs, their_lead = await seeded_workspace(api)
    key = await api.api_key(mine, ["leads:read", "leads:write"])
    assert_problem(await http.get(f"/v1/leads/{their_lead}", headers=bearer(key)), 404, "not-found")
    listed = await http.get("/v1/leads", headers=bearer(key))
    assert str(their_lead) not in listed.text
    # Nor can another workspace's admin revoke it.
    key_id = (await http.get("/v1/api-keys", headers=mine.headers)).json()["items"][0]["id"]
    assert_problem(
        await http.delete(f"/v1/api-keys/{key_id}", headers=theirs.headers), 404, "not-found"
    )
    assert (await http.get("/v1/leads", headers=bearer(key))).status_code == 200


@pytest.mark.parametrize(
    ("scopes", "named"),
    [
        (["members:write"], "members:write"),
        (["keys:manage"], "keys:manage"),
        (["leads:read", "workspace:write"], "workspace:write"),
    ],
)
async def test_admin_scopes_are_not_grantable(http, admin_db, keyless, scopes, named):
    """The document offers only the grantable scopes: any other is refused by name, at its
    place in the list."""
    response = await create_key(http, keyless, scopes=scopes)
    body = assert_problem(response, 422, "validation-error")
    assert error_fields(body) == [f"body.scopes.{scopes.index(named)}"]
    assert named in body["detail"]
    assert await keys_in(admin_db, keyless.workspace_id) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"scopes": []}, "body.scopes"),
        ({"scopes": ["leads:delete"]}, "body.scopes.0"),
        ({"name": " "}, "body.name"),
        ({"secret": "mine"}, "body.secret"),
    ],
    ids=["no-scopes", "unknown-scope", "blank-name", "unknown-field"],
)
async def test_key_request_validation(http, admin_db, keyless, fields, field):
    body = assert_problem(await create_key(http, keyless, **fields), 422, "validation-error")
    assert field in [error["field"] for error in body["errors"]]
    assert await keys_in(admin_db, keyless.workspace_id) == 0


async def test_every_grantable_scope_can_be_granted(http, api):
    owner = await api.signup()
    response = await create_key(http, owner, scopes=GRANTABLE)
    assert response.status_code == 201, response.text
    me = (await http.get("/v1/me", headers=bearer(response.json()["key"]))).json()
    assert me["permissions"] == GRANTABLE


async def test_revoked_key_is_unauthorized(http, api, admin_db):
    owner = await api.signup()
    admin = await api.member(owner, "admin")
    issued = (await create_key(http, owner)).json()
    assert (await http.get("/v1/leads", headers=bearer(issued["key"]))).status_code == 200

    revoked = await http.delete(f"/v1/api-keys/{issued['id']}", headers=admin.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"] is not None

    response = await http.get("/v1/leads", headers=bearer(issued["key"]))
    body = assert_problem(response, 401, "unauthorized")
    assert "revoked" in body["detail"]
    assert response.headers["www-authenticate"] == "Bearer"
    # Revoking again is harmless and not audited twice.
    again = await http.delete(f"/v1/api-keys/{issued['id']}", headers=admin.headers)
    assert again.status_code == 200
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    [row] = await audit_rows(admin_db, owner.workspace_id, "api_key.revoked")
    assert row["actor_id"] == admin.user_id
    assert row["target_type"] == "api_key"
    assert row["target_id"] == issued["id"]
    # Still listed, marked revoked.
    [entry] = (await http.get("/v1/api-keys", headers=owner.headers)).json()["items"]
    assert entry["revoked_at"] == revoked.json()["revoked_at"]


async def test_revoking_an_unknown_key_is_not_found(http, keyless):
    response = await http.delete(f"/v1/api-keys/{uuid.uuid4()}", headers=keyless.headers)
    assert_problem(response, 404, "not-found")


async def test_expiry_in_the_past_is_refused(http, admin_db, keyless):
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    body = assert_problem(await create_key(http, keyless, expires_at=past), 422, "validation-error")
    assert "body.expires_at" in [error["field"] for error in body["errors"]]
    assert await keys_in(admin_db, keyless.workspace_id) == 0


async def test_expired_key_is_unauthorized(http, api, admin_db):
    owner = await api.signup()
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    issued = (await create_key(http, owner, expires_at=future)).json()
    assert (await http.get("/v1/leads", headers=bearer(issued["key"]))).status_code == 200

    await admin_db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second'"
        " WHERE workspace_id = $1 AND id = $2",
        owner.workspace_id,
        uuid.UUID(issued["id"]),
    )
    response = await http.get("/v1/leads", headers=bearer(issued["key"]))
    assert "expired" in assert_problem(response, 401, "unauthorized")["detail"]


async def test_last_used_at_is_recorded(http, api):
    owner = await api.signup()
    issued = (await create_key(http, owner)).json()
    unused = (await http.get("/v1/api-keys", headers=owner.headers)).json()["items"][0]
    assert unused["last_used_at"] is None

    before = datetime.now(UTC)
    assert (await http.get("/v1/leads", headers=bearer(issued["key"]))).status_code == 200
    used = (await http.get("/v1/api-keys", headers=owner.headers)).json()["items"][0]
    assert used["last_used_at"] is not None
    last_used = datetime.fromisoformat(used["last_used_at"])
    assert before - timedelta(seconds=5) <= last_used <= datetime.now(UTC) + timedelta(seconds=5)


async def test_key_cannot_manage_keys_or_members(http, api, admin_db):
    owner = await api.signup()
    member = await api.member(owner, "member")
    invitee = await api.signup()
    pending = await http.post(
        "/v1/invitations", json={"email": invitee.email}, headers=owner.headers
    )
    assert pending.status_code == 201, pending.text
    key = await api.api_key(owner, GRANTABLE)
    headers = bearer(key)
    own_key_id = (await http.get("/v1/api-keys", headers=owner.headers)).json()["items"][0]["id"]

    attempts = [
        ("keys:manage", "POST", "/v1/api-keys", {"name": "x", "scopes": ["leads:read"]}),
        ("keys:manage", "GET", "/v1/api-keys", None),
        ("keys:manage", "DELETE", f"/v1/api-keys/{own_key_id}", None),
        ("members:write", "POST", "/v1/invitations", {"email": unique_email()}),
        ("members:write", "GET", "/v1/invitations", None),
        ("members:write", "PATCH", f"/v1/members/{member.user_id}", {"role": "admin"}),
        ("members:write", "DELETE", f"/v1/members/{member.user_id}", None),
        ("workspace:write", "PATCH", "/v1/workspace", {"name": "x"}),
    ]
    for permission, method, url, payload in attempts:
        response = await http.request(method, url, json=payload, headers=headers)
        assert permission in assert_problem(response, 403, "forbidden")["detail"], (method, url)
    # Nor may a key act as a user: join a workspace or create one.
    accepted = await http.post(
        "/v1/invitations/accept", json={"token": pending.json()["token"]}, headers=headers
    )
    assert "signed-in user" in assert_problem(accepted, 403, "forbidden")["detail"]
    created = await http.post("/v1/workspaces", json={"name": "Key's own"}, headers=headers)
    assert_problem(created, 403, "forbidden")

    # Reading members is a grantable scope, and works.
    members = await http.get("/v1/members", headers=headers)
    assert members.status_code == 200, members.text
    count = await admin_db.fetchval(
        "SELECT count(*) FROM api_keys WHERE workspace_id = $1", owner.workspace_id
    )
    assert count == 1
    roles = {row["user_id"]: row["role"] for row in members.json()["items"]}
    assert roles[str(member.user_id)] == "member"


async def test_expiry_without_a_timezone_is_refused_or_read_as_utc(http, keyless, admin_db):
    response = await create_key(http, keyless, expires_at="2099-01-01T00:00:00")
    if response.status_code == 201:
        expires = datetime.fromisoformat(response.json()["expires_at"])
        assert expires == datetime(2099, 1, 1, tzinfo=UTC)
        revoked = await http.delete(
            f"/v1/api-keys/{response.json()['id']}", headers=keyless.headers
        )
        assert revoked.status_code == 200
    else:
        body = assert_problem(response, 422, "validation-error")
        assert "body.expires_at" in [error["field"] for error in body["errors"]]
        assert await keys_in(admin_db, keyless.workspace_id) == 0


async def test_keys_page_oldest_first_without_repeats(http, api):
    owner = await api.signup()
    for _ in range(5):
        await api.api_key(owner, ["leads:read"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/api-keys", params=params, headers=owner.headers)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5
    assert seen == sorted(seen)
