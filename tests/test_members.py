"""Roles and what each may do, membership changes (including the last-owner rule), leaving,
removal taking effect at once, workspace rename, invitations, and the audit trail they leave."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.factories import (
    LINK_CONFIG,
    LINK_CONNECTOR,
    Account,
    Api,
    assert_problem,
    bearer,
    unique_email,
)


async def audit_rows(admin_db, workspace_id: uuid.UUID, action: str) -> list[dict[str, Any]]:
    rows = await admin_db.fetch(
        "SELECT actor_type, actor_id, target_type, target_id, details FROM audit_log"
        " WHERE workspace_id = $1 AND action = $2 ORDER BY created_at, id",
        workspace_id,
        action,
    )
    return [{**dict(row), "details": json.loads(row["details"])} for row in rows]


async def roles_of(http: httpx.AsyncClient, account: Account) -> dict[str, str]:
    response = await http.get("/v1/members", headers=account.headers)
    assert response.status_code == 200, response.text
    return {member["user_id"]: member["role"] for member in response.json()["items"]}


async def owner_count(admin_db, workspace_id: uuid.UUID) -> int:
    return int(
        await admin_db.fetchval(
            "SELECT count(*) FROM memberships WHERE workspace_id = $1 AND role = 'owner'",
            workspace_id,
        )
    )


async def invite(
    http: httpx.AsyncClient, inviter: Account, email: str, role: str = "member"
) -> httpx.Response:
    return await http.post(
        "/v1/invitations", json={"email": email, "role": role}, headers=inviter.headers
    )


async def accept(http: httpx.AsyncClient, account: Account, token: str) -> httpx.Response:
    return await http.post("/v1/invitations/accept", json={"token": token}, headers=account.headers)


# --- what each role may do -------------------------------------------------------------------


@dataclass
class Team:
    owner: Account
    lead_id: uuid.UUID
    by_role: dict[str, Account]


@pytest.fixture(scope="module")
async def team(api: Api) -> Team:
    owner = await api.signup(workspace="Role Matrix")
    vendor = await api.new_vendor()
    await api.link(owner, vendor)
    [lead_id] = await api.seed_leads(owner.workspace_id, vendor, 1)
    by_role = {"owner": owner}
    for role in ("admin", "member", "viewer"):
        by_role[role] = await api.member(owner, role)
    return Team(owner=owner, lead_id=lead_id, by_role=by_role)


Action = Callable[[httpx.AsyncClient, Api, Team, Account], Awaitable[httpx.Response]]


async def _read_leads(http, api, team, actor):
    return await http.get("/v1/leads", headers=actor.headers)


async def _patch_lead(http, api, team, actor):
    return await http.patch(
        f"/v1/leads/{team.lead_id}", json={"notes": f"note by {actor.email}"}, headers=actor.headers
    )


async def _create_link(http, api, team, actor):
    vendor = await api.new_vendor()
    return await http.post(
        "/v1/links",
        json={
            "vendor_id": str(vendor),
            "connector": LINK_CONNECTOR,
            "config": LINK_CONFIG,
        },
        headers=actor.headers,
    )


async def _create_key(http, api, team, actor):
    return await http.post(
        "/v1/api-keys", json={"name": "crm", "scopes": ["leads:read"]}, headers=actor.headers
    )


async def _list_keys(http, api, team, actor):
    return await http.get("/v1/api-keys", headers=actor.headers)


async def _invite(http, api, team, actor):
    return await invite(http, actor, unique_email("matrix"), "viewer")


async def _list_invitations(http, api, team, actor):
    return await http.get("/v1/invitations", headers=actor.headers)


async def _list_members(http, api, team, actor):
    return await http.get("/v1/members", headers=actor.headers)


async def _change_role(http, api, team, actor):
    # The viewer stays viewer: a no-op that still needs the permission.
    viewer = team.by_role["viewer"]
    return await http.patch(
        f"/v1/members/{viewer.user_id}", json={"role": "viewer"}, headers=actor.headers
    )


async def _remove_someone(http, api, team, actor):
    # Someone who is not in the workspace: a permitted caller gets 404, others 403 first.
    return await http.delete(f"/v1/members/{uuid.uuid4()}", headers=actor.headers)


async def _rename(http, api, team, actor):
    return await http.patch("/v1/workspace", json={"name": "Role Matrix"}, headers=actor.headers)


# action: (permission it needs, status when allowed, roles allowed)
MATRIX: dict[str, tuple[Action, str, int, set[str]]] = {
    "read-leads": (_read_leads, "leads:read", 200, {"owner", "admin", "member", "viewer"}),
    "patch-lead": (_patch_lead, "leads:write", 200, {"owner", "admin", "member"}),
    "create-link": (_create_link, "links:write", 201, {"owner", "admin"}),
    "create-api-key": (_create_key, "keys:manage", 201, {"owner", "admin"}),
    "list-api-keys": (_list_keys, "keys:manage", 200, {"owner", "admin"}),
    "invite": (_invite, "members:write", 201, {"owner", "admin"}),
    "list-invitations": (_list_invitations, "members:write", 200, {"owner", "admin"}),
    "list-members": (_list_members, "members:read", 200, {"owner", "admin", "member", "viewer"}),
    "change-role": (_change_role, "members:write", 200, {"owner", "admin"}),
    "remove-member": (_remove_someone, "members:write", 404, {"owner", "admin"}),
    "rename-workspace": (_rename, "workspace:write", 200, {"owner"}),
}


@pytest.mark.parametrize("role", ["owner", "admin", "member", "viewer"])
@pytest.mark.parametrize("action", list(MATRIX))
async def test_role_permissions(http, api, team, role, action):
    run, permission, allowed_status, allowed_roles = MATRIX[action]
    response = await run(http, api, team, team.by_role[role])
    if role in allowed_roles:
        assert response.status_code == allowed_status, response.text
    else:
        body = assert_problem(response, 403, "forbidden")
        assert permission in body["detail"]


async def test_me_lists_each_roles_permissions(http, team):
    expected = {
        "viewer": ["changes:read", "content:read", "leads:read", "links:read", "members:read"],
        "member": [
            "changes:read",
            "content:read",
            "leads:read",
            "leads:write",
            "links:read",
            "members:read",
        ],
        "admin": [
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
        ],
    }
    expected["owner"] = sorted([*expected["admin"], "workspace:write"])
    for role, account in team.by_role.items():
        me = (await http.get("/v1/me", headers=account.headers)).json()
        assert me["workspace"]["id"] == str(team.owner.workspace_id)
        assert me["workspace"]["role"] == role
        assert me["permissions"] == expected[role], role


async def test_viewer_write_attempts_change_nothing(http, api, team, admin_db):
    viewer = team.by_role["viewer"]
    before = await admin_db.fetchrow(
        "SELECT notes, version FROM leads WHERE workspace_id = $1 AND id = $2",
        team.owner.workspace_id,
        team.lead_id,
    )
    assert_problem(await _patch_lead(http, api, team, viewer), 403, "forbidden")
    after = await admin_db.fetchrow(
        "SELECT notes, version FROM leads WHERE workspace_id = $1 AND id = $2",
        team.owner.workspace_id,
        team.lead_id,
    )
    assert dict(after) == dict(before)


# --- changing roles --------------------------------------------------------------------------


async def test_admin_manages_members_but_not_owners(http, api, admin_db):
    owner = await api.signup()
    admin = await api.member(owner, "admin")
    member = await api.member(owner, "member")

    # A member may not touch anyone else's membership.
    for method, payload in [("PATCH", {"role": "viewer"}), ("DELETE", None)]:
        response = await http.request(
            method, f"/v1/members/{admin.user_id}", json=payload, headers=member.headers
        )
        assert "members:write" in assert_problem(response, 403, "forbidden")["detail"]

    demoted = await http.patch(
        f"/v1/members/{member.user_id}", json={"role": "viewer"}, headers=admin.headers
    )
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "viewer"
    assert demoted.json()["user_id"] == str(member.user_id)
    # The change applies to the member's current token at once.
    me = (await http.get("/v1/me", headers=member.headers)).json()
    assert me["workspace"]["role"] == "viewer"
    assert_problem(
        await http.patch(f"/v1/leads/{uuid.uuid4()}", json={"notes": "x"}, headers=member.headers),
        403,
        "forbidden",
    )
    # Setting the role someone already has changes (and audits) nothing.
    same = await http.patch(
        f"/v1/members/{member.user_id}", json={"role": "viewer"}, headers=admin.headers
    )
    assert same.status_code == 200, same.text
    assert same.json()["role"] == "viewer"

    for method, url, payload in [
        ("PATCH", f"/v1/members/{member.user_id}", {"role": "owner"}),
        ("PATCH", f"/v1/members/{admin.user_id}", {"role": "owner"}),
        ("PATCH", f"/v1/members/{owner.user_id}", {"role": "admin"}),
        ("DELETE", f"/v1/members/{owner.user_id}", None),
        ("POST", "/v1/invitations", {"email": unique_email("would-be-owner"), "role": "owner"}),
    ]:
        response = await http.request(method, url, json=payload, headers=admin.headers)
        assert "owner" in assert_problem(response, 403, "forbidden")["detail"], (method, url)

    assert await roles_of(http, owner) == {
        str(owner.user_id): "owner",
        str(admin.user_id): "admin",
        str(member.user_id): "viewer",
    }
    [changed] = await audit_rows(admin_db, owner.workspace_id, "member.role_changed")
    assert changed["actor_type"] == "user"
    assert changed["actor_id"] == admin.user_id
    assert changed["target_type"] == "user"
    assert changed["target_id"] == str(member.user_id)
    assert changed["details"] == {"from": "member", "to": "viewer"}

    removed = await http.delete(f"/v1/members/{member.user_id}", headers=admin.headers)
    assert removed.status_code == 204, removed.text
    assert set(await roles_of(http, owner)) == {str(owner.user_id), str(admin.user_id)}


async def test_owner_grants_owner_and_can_then_step_down(http, api, admin_db):
    owner = await api.signup()
    successor = await api.member(owner, "member")

    granted = await http.patch(
        f"/v1/members/{successor.user_id}", json={"role": "owner"}, headers=owner.headers
    )
    assert granted.status_code == 200, granted.text
    assert granted.json()["role"] == "owner"
    me = (await http.get("/v1/me", headers=successor.headers)).json()
    assert me["workspace"]["role"] == "owner"
    assert "workspace:write" in me["permissions"]

    stepped_down = await http.patch(
        f"/v1/members/{owner.user_id}", json={"role": "admin"}, headers=owner.headers
    )
    assert stepped_down.status_code == 200, stepped_down.text
    assert await roles_of(http, successor) == {
        str(owner.user_id): "admin",
        str(successor.user_id): "owner",
    }
    # Now an admin, the former owner can no longer take the role back.
    assert_problem(
        await http.patch(
            f"/v1/members/{owner.user_id}", json={"role": "owner"}, headers=owner.headers
        ),
        403,
        "forbidden",
    )
    changes = await audit_rows(admin_db, owner.workspace_id, "member.role_changed")
    assert [row["details"] for row in changes] == [
        {"from": "member", "to": "owner"},
        {"from": "owner", "to": "admin"},
    ]


async def test_last_owner_cannot_be_demoted_or_leave(http, api, admin_db):
    owner = await api.signup()
    admin = await api.member(owner, "admin")

    demote = await http.patch(
        f"/v1/members/{owner.user_id}", json={"role": "admin"}, headers=owner.headers
    )
    assert "owner" in assert_problem(demote, 409, "conflict")["detail"]
    leave = await http.delete(f"/v1/members/{owner.user_id}", headers=owner.headers)
    assert "owner" in assert_problem(leave, 409, "conflict")["detail"]

    assert await roles_of(http, owner) == {
        str(owner.user_id): "owner",
        str(admin.user_id): "admin",
    }
    renamed = await http.patch("/v1/workspace", json={"name": "Still mine"}, headers=owner.headers)
    assert renamed.status_code == 200, renamed.text
    assert await audit_rows(admin_db, owner.workspace_id, "member.role_changed") == []
    assert await audit_rows(admin_db, owner.workspace_id, "member.removed") == []


async def racing(
    admin_db, workspace_id: uuid.UUID, user_ids: list[uuid.UUID], *requests: Awaitable[Any]
) -> list[httpx.Response]:
    """Start ``requests`` while the memberships of ``user_ids`` are locked, and release them
    only once every request waits on a lock, so they check and change the memberships as
    close together as the database allows."""
    loop = asyncio.get_running_loop()
    async with admin_db.transaction():
        await admin_db.execute(
            "SELECT 1 FROM memberships WHERE workspace_id = $1 AND user_id = ANY($2::uuid[])"
            " FOR UPDATE",
            workspace_id,
            user_ids,
        )
        tasks = [asyncio.ensure_future(request) for request in requests]
        deadline = loop.time() + 5
        while loop.time() < deadline:
            # Activity statistics are a snapshot per transaction unless cleared.
            await admin_db.execute("SELECT pg_stat_clear_snapshot()")
            waiting = await admin_db.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if waiting >= len(tasks):
                break
            await asyncio.sleep(0.01)
    return list(await asyncio.gather(*tasks))


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(http, api, admin_db):
    first = await api.signup()
    second = await api.member(first, "owner")
    responses = await racing(
        admin_db,
        first.workspace_id,
        [first.user_id, second.user_id],
        http.patch(f"/v1/members/{second.user_id}", json={"role": "admin"}, headers=first.headers),
        http.patch(f"/v1/members/{first.user_id}", json={"role": "admin"}, headers=second.headers),
    )
    assert sorted(response.status_code for response in responses) == [200, 409], [
        response.text for response in responses
    ]
    assert await owner_count(admin_db, first.workspace_id) == 1


async def test_two_owners_leaving_at_once_leave_one_owner(http, api, admin_db):
    first = await api.signup()
    second = await api.member(first, "owner")
    responses = await racing(
        admin_db,
        first.workspace_id,
        [first.user_id, second.user_id],
        http.delete(f"/v1/members/{first.user_id}", headers=first.headers),
        http.delete(f"/v1/members/{second.user_id}", headers=second.headers),
    )
    assert sorted(response.status_code for response in responses) == [204, 409], [
        response.text for response in responses
    ]
    assert await owner_count(admin_db, first.workspace_id) == 1


async def test_bad_role_changes_are_refused(http, api):
    owner = await api.signup()
    stranger = await api.signup()
    for response in (
        await http.patch(
            f"/v1/members/{stranger.user_id}", json={"role": "viewer"}, headers=owner.headers
        ),
        await http.delete(f"/v1/members/{stranger.user_id}", headers=owner.headers),
    ):
        assert str(stranger.user_id) in assert_problem(response, 404, "not-found")["detail"]
    # The stranger's own workspace membership is untouched.
    assert await roles_of(http, stranger) == {str(stranger.user_id): "owner"}

    invalid = await http.patch(
        f"/v1/members/{owner.user_id}", json={"role": "superuser"}, headers=owner.headers
    )
    body = assert_problem(invalid, 422, "validation-error")
    assert "body.role" in [error["field"] for error in body["errors"]]
    assert await roles_of(http, owner) == {str(owner.user_id): "owner"}


# --- leaving and removal ---------------------------------------------------------------------


async def test_member_can_leave(http, api, admin_db):
    owner = await api.signup()
    member = await api.member(owner, "member")
    before = (await http.get("/v1/me", headers=member.headers)).json()
    [own_workspace] = [ws["id"] for ws in before["workspaces"] if ws["role"] == "owner"]

    response = await http.delete(f"/v1/members/{member.user_id}", headers=member.headers)
    assert response.status_code == 204, response.text

    assert str(member.user_id) not in await roles_of(http, owner)
    # The still-valid token no longer opens the workspace.
    denied = await http.get("/v1/leads", headers=member.headers)
    assert "no workspace selected" in assert_problem(denied, 403, "forbidden")["detail"]
    me = await http.get("/v1/me", headers=member.headers)
    assert me.status_code == 200, me.text
    assert me.json().get("workspace") is None
    assert me.json()["permissions"] == []
    assert [ws["id"] for ws in me.json()["workspaces"]] == [own_workspace]
    # Refreshing falls back to a workspace the user still belongs to.
    renewed = await http.post("/v1/auth/refresh", json={"refresh_token": member.refresh_token})
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["workspace_id"] == own_workspace

    [removed] = await audit_rows(admin_db, owner.workspace_id, "member.removed")
    assert removed["actor_id"] == member.user_id
    assert removed["target_id"] == str(member.user_id)
    assert removed["details"] == {"role": "member"}


async def test_removed_member_is_locked_out_at_once(http, api, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor()
    await api.link(owner, vendor)
    [lead_id] = await api.seed_leads(owner.workspace_id, vendor, 1)
    member = await api.member(owner, "member")
    assert (await http.get(f"/v1/leads/{lead_id}", headers=member.headers)).status_code == 200

    response = await http.delete(f"/v1/members/{member.user_id}", headers=owner.headers)
    assert response.status_code == 204, response.text

    for method, url, payload in [
        ("GET", "/v1/leads", None),
        ("GET", f"/v1/leads/{lead_id}", None),
        ("PATCH", f"/v1/leads/{lead_id}", {"notes": "after"}),
        ("GET", "/v1/members", None),
    ]:
        response = await http.request(method, url, json=payload, headers=member.headers)
        assert_problem(response, 403, "forbidden")
    notes = await admin_db.fetchval(
        "SELECT notes FROM leads WHERE workspace_id = $1 AND id = $2", owner.workspace_id, lead_id
    )
    assert notes != "after"
    # Nor can they get back in by asking for that workspace.
    switch = await http.post(
        "/v1/auth/refresh",
        json={"refresh_token": member.refresh_token, "workspace_id": str(owner.workspace_id)},
    )
    assert_problem(switch, 403, "forbidden")

    [removed] = await audit_rows(admin_db, owner.workspace_id, "member.removed")
    assert removed["actor_type"] == "user"
    assert removed["actor_id"] == owner.user_id
    assert removed["target_type"] == "user"
    assert removed["target_id"] == str(member.user_id)
    assert removed["details"] == {"role": "member"}


# --- renaming the workspace ------------------------------------------------------------------


async def test_only_the_owner_renames_the_workspace(http, api, admin_db):
    owner = await api.signup(workspace="Old Name")
    admin = await api.member(owner, "admin")

    refused = await http.patch("/v1/workspace", json={"name": "Hijacked"}, headers=admin.headers)
    assert "workspace:write" in assert_problem(refused, 403, "forbidden")["detail"]

    renamed = await http.patch("/v1/workspace", json={"name": "New Name"}, headers=owner.headers)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "New Name"
    assert renamed.json()["id"] == str(owner.workspace_id)
    me = (await http.get("/v1/me", headers=admin.headers)).json()
    assert me["workspace"]["name"] == "New Name"

    blank = await http.patch("/v1/workspace", json={"name": "  "}, headers=owner.headers)
    body = assert_problem(blank, 422, "validation-error")
    assert "body.name" in [error["field"] for error in body["errors"]]

    [audit] = await audit_rows(admin_db, owner.workspace_id, "workspace.renamed")
    assert audit["actor_id"] == owner.user_id
    assert audit["details"] == {"from": "Old Name", "to": "New Name"}


# --- invitations -----------------------------------------------------------------------------


async def test_invitation_lifecycle(http, api, admin_db, settings):
    owner = await api.signup(workspace="Inviting Co")
    admin = await api.member(owner, "admin")
    invitee = await api.signup()

    issued = await invite(http, admin, invitee.email.upper(), "viewer")
    assert issued.status_code == 201, issued.text
    invitation = issued.json()
    token = invitation["token"]
    assert token
    assert invitation["role"] == "viewer"
    assert invitation["email"].lower() == invitee.email.lower()
    expires_at = datetime.fromisoformat(invitation["expires_at"])
    expected = datetime.now(UTC) + timedelta(seconds=settings.invitation_ttl_seconds)
    assert abs(expires_at - expected) < timedelta(minutes=1)

    listed = await http.get("/v1/invitations", headers=admin.headers)
    assert listed.status_code == 200, listed.text
    assert [item["id"] for item in listed.json()["items"]] == [invitation["id"]]
    assert "token" not in listed.json()["items"][0]
    assert token not in listed.text

    [created] = [
        row
        for row in await audit_rows(admin_db, owner.workspace_id, "invitation.created")
        if row["target_id"] == invitation["id"]
    ]
    assert created["actor_id"] == admin.user_id
    assert created["target_type"] == "invitation"
    assert created["target_id"] == invitation["id"]
    assert created["details"]["role"] == "viewer"
    assert token not in json.dumps(created["details"])

    accepted = await accept(http, invitee, token)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["id"] == str(owner.workspace_id)
    assert accepted.json()["name"] == "Inviting Co"
    assert accepted.json()["role"] == "viewer"
    assert (await roles_of(http, owner))[str(invitee.user_id)] == "viewer"
    assert (await http.get("/v1/invitations", headers=admin.headers)).json()["items"] == []

    again = await accept(http, invitee, token)
    assert again.status_code in (404, 409), again.text
    assert_problem(
        again, again.status_code, "not-found" if again.status_code == 404 else "conflict"
    )
    accepted_rows = await audit_rows(admin_db, owner.workspace_id, "invitation.accepted")
    assert [row["target_id"] for row in accepted_rows].count(invitation["id"]) == 1


async def test_invitation_for_someone_else_is_forbidden(http, api):
    owner = await api.signup()
    intended = unique_email("intended")
    interloper = await api.signup()
    issued = await invite(http, owner, intended)
    assert issued.status_code == 201, issued.text

    response = await accept(http, interloper, issued.json()["token"])
    body = assert_problem(response, 403, "forbidden")
    assert "email" in body["detail"]
    assert str(interloper.user_id) not in await roles_of(http, owner)
    # The invitation is still there for the right person.
    pending = (await http.get("/v1/invitations", headers=owner.headers)).json()["items"]
    assert [item["id"] for item in pending] == [issued.json()["id"]]

    rightful = await api.signup(email=intended)
    assert (await accept(http, rightful, issued.json()["token"])).status_code == 200


async def test_revoked_invitation_cannot_be_accepted(http, api, admin_db):
    owner = await api.signup()
    invitee = await api.signup()
    issued = (await invite(http, owner, invitee.email)).json()

    revoked = await http.delete(f"/v1/invitations/{issued['id']}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text
    assert (await http.get("/v1/invitations", headers=owner.headers)).json()["items"] == []
    assert_problem(await accept(http, invitee, issued["token"]), 404, "not-found")
    assert str(invitee.user_id) not in await roles_of(http, owner)
    assert_problem(
        await http.delete(f"/v1/invitations/{issued['id']}", headers=owner.headers),
        404,
        "not-found",
    )
    [row] = await audit_rows(admin_db, owner.workspace_id, "invitation.revoked")
    assert row["actor_id"] == owner.user_id
    assert row["target_id"] == issued["id"]


async def test_expired_invitation_cannot_be_accepted(http, api, admin_db):
    owner = await api.signup()
    invitee = await api.signup()
    issued = (await invite(http, owner, invitee.email)).json()
    await admin_db.execute(
        "UPDATE invitations SET expires_at = now() - interval '1 second'"
        " WHERE workspace_id = $1 AND id = $2",
        owner.workspace_id,
        uuid.UUID(issued["id"]),
    )
    assert (await http.get("/v1/invitations", headers=owner.headers)).json()["items"] == []
    assert_problem(await accept(http, invitee, issued["token"]), 404, "not-found")
    assert str(invitee.user_id) not in await roles_of(http, owner)


def _other_workspace(token: str) -> str:
    prefix, _, rest = token.partition("_")
    _, _, secret = rest.partition("_")
    return f"{prefix}_{uuid.uuid4().hex}_{secret}"


def _wrong_secret(token: str) -> str:
    return token[: token.rindex("_") + 1] + "not-the-secret"


def _no_secret(token: str) -> str:
    return token[: token.rindex("_") + 1]


BOGUS_TOKENS: dict[str, Callable[[str], str]] = {
    "garbage": lambda token: "garbage",
    "prefix-only": lambda token: "inv_",
    "bad-workspace": lambda token: "inv_not-hex_secret",
    "other-workspace": _other_workspace,
    "wrong-secret": _wrong_secret,
    "no-secret": _no_secret,
    "extended": lambda token: token + "x",
}


async def test_bogus_invitation_tokens_are_not_found(http, api):
    owner = await api.signup()
    invitee = await api.signup()
    issued = await invite(http, owner, invitee.email)
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    for name, mangle in BOGUS_TOKENS.items():
        response = await accept(http, invitee, mangle(token))
        assert response.status_code == 404, (name, response.text)
        assert_problem(response, 404, "not-found")
    assert str(invitee.user_id) not in await roles_of(http, owner)
    # The genuine token still works afterwards.
    assert (await accept(http, invitee, token)).status_code == 200


async def test_inviting_an_existing_member_conflicts(http, api, admin_db):
    owner = await api.signup()
    member = await api.member(owner, "member")
    for email in (member.email.upper(), owner.email):
        response = await invite(http, owner, email)
        assert "already a member" in assert_problem(response, 409, "conflict")["detail"]
    count = await admin_db.fetchval(
        "SELECT count(*) FROM invitations WHERE workspace_id = $1 AND accepted_at IS NULL",
        owner.workspace_id,
    )
    assert count == 0


async def test_accepting_a_second_invitation_when_already_a_member_conflicts(http, api):
    owner = await api.signup()
    invitee = await api.signup()
    first = (await invite(http, owner, invitee.email, "viewer")).json()
    second = (await invite(http, owner, invitee.email, "admin")).json()
    assert (await accept(http, invitee, first["token"])).status_code == 200
    assert_problem(await accept(http, invitee, second["token"]), 409, "conflict")
    assert (await roles_of(http, owner))[str(invitee.user_id)] == "viewer"


async def test_owner_invites_an_owner(http, api):
    owner = await api.signup()
    invitee = await api.signup()
    issued = await invite(http, owner, invitee.email, "owner")
    assert issued.status_code == 201, issued.text
    accepted = await accept(http, invitee, issued.json()["token"])
    assert accepted.json()["role"] == "owner"
    tokens = await api.login(invitee.email, workspace_id=owner.workspace_id)
    me = (await http.get("/v1/me", headers=bearer(tokens["access_token"]))).json()
    assert me["workspace"]["role"] == "owner"


async def test_invitation_validation(http, api):
    owner = await api.signup()
    for payload, field in [
        ({"email": "not-an-email", "role": "member"}, "body.email"),
        ({"email": "someone@example.com", "role": "superuser"}, "body.role"),
        ({"email": "someone@example.com", "note": "hi"}, "body.note"),
        ({"role": "member"}, "body.email"),
    ]:
        response = await http.post("/v1/invitations", json=payload, headers=owner.headers)
        body = assert_problem(response, 422, "validation-error")
        assert field in [error["field"] for error in body["errors"]], (payload, body)
    assert (await http.get("/v1/invitations", headers=owner.headers)).json()["items"] == []


async def test_creating_another_workspace_makes_you_its_owner(http, api):
    user = await api.signup(workspace="First")
    created = await http.post("/v1/workspaces", json={"name": "Second"}, headers=user.headers)
    assert created.status_code == 201, created.text
    assert created.json()["name"] == "Second"
    assert created.json()["role"] == "owner"
    second = uuid.UUID(created.json()["id"])
    assert second != user.workspace_id

    # The current token stays in the first workspace; refreshing into the new one works.
    me = (await http.get("/v1/me", headers=user.headers)).json()
    assert me["workspace"]["id"] == str(user.workspace_id)
    assert {ws["id"]: ws["role"] for ws in me["workspaces"]} == {
        str(user.workspace_id): "owner",
        str(second): "owner",
    }
    switched = await http.post(
        "/v1/auth/refresh", json={"refresh_token": user.refresh_token, "workspace_id": str(second)}
    )
    assert switched.status_code == 200, switched.text
    members = await http.get("/v1/members", headers=bearer(switched.json()["access_token"]))
    assert [(m["user_id"], m["role"]) for m in members.json()["items"]] == [
        (str(user.user_id), "owner")
    ]


async def test_members_page_in_the_order_they_joined(http, api):
    owner = await api.signup()
    joined = [owner.user_id]
    for _ in range(3):
        joined.append((await api.member(owner, "viewer")).user_id)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/members", params=params, headers=owner.headers)).json()
        seen += [item["user_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(user_id) for user_id in joined]
    foreign = await http.get(
        "/v1/members", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=owner.headers
    )
    assert_problem(foreign, 400, "bad-cursor")


async def test_membership_changes_are_in_the_change_log(http, api, admin_db):
    owner = await api.signup()
    member = await api.member(owner, "member")
    promoted = await http.patch(
        f"/v1/members/{member.user_id}", json={"role": "admin"}, headers=owner.headers
    )
    assert promoted.status_code == 200
    removed = await http.delete(f"/v1/members/{member.user_id}", headers=owner.headers)
    assert removed.status_code == 204
    rows = await admin_db.fetch(
        "SELECT seq, type, entity_id FROM events WHERE workspace_id = $1 ORDER BY seq",
        owner.workspace_id,
    )
    assert [row["seq"] for row in rows] == list(range(1, len(rows) + 1))
    member_events = [(r["type"], r["entity_id"]) for r in rows if r["type"].startswith("member.")]
    assert member_events == [
        ("member.joined", member.user_id),
        ("member.role_changed", member.user_id),
        ("member.removed", member.user_id),
    ]
