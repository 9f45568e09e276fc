"""Tenant isolation at the API: every ``/v1`` operation in the OpenAPI document has a case below
in which workspace A's owner, A's API key and vendor V1's key try workspace B's ids; they get
403/404 exactly as for ids that do not exist, learn nothing of B, and change none of B's rows.
Pagination cursors are covered in ``test_isolation_cursors.py``.

The world, the helpers and the case registry are in ``isolation_world.py``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

import tests.isolation_changes_cases
import tests.isolation_content_cases  # noqa: F401 - registers the content endpoint cases
from tests.factories import PASSWORD, Api, bearer, unique_email
from tests.isolation_world import (
    CASES,
    Case,
    World,
    attempt,
    build_world,
    case,
    fetch,
    ids_as_owner,
    listed_ids,
    snapshot,
)

HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


@pytest.fixture(scope="module")
async def world(api: Api, http: httpx.AsyncClient) -> World:
    return await build_world(api, http)


# --------------------------------------------------------------------------------------------
# One case per /v1 operation


def _smuggle(payload: dict[str, Any]) -> Callable[[dict[str, uuid.UUID]], dict[str, Any]]:
    """A fixed request body for ``attempt``."""
    return lambda ids: payload


@case("GET", "/v1/leads")
async def _list_leads(w: World, db: asyncpg.Connection) -> None:
    mine = await ids_as_owner(
        db, "SELECT id FROM leads WHERE workspace_id = $1 AND deleted_at IS NULL", w.a.workspace_id
    )
    assert mine == set(w.a.lead_ids)
    for who in ("owner", "key"):
        assert await listed_ids(w, who, "/v1/leads?limit=200") == mine
        # A filter naming B's vendor (which A does not link) finds nothing of B.
        assert await listed_ids(w, who, f"/v1/leads?vendor_id={w.v2}") == set()
        assert await listed_ids(w, who, f"/v1/leads?vendor_id={w.v1}") == mine
        assert await listed_ids(w, who, f"/v1/leads?q={w.b.marker}") == set()
    # V1 sees its leads where a workspace actively links it (A), not B's V1 leads (B never
    # linked V1) nor B's V2 leads, whatever the filter says.
    assert await listed_ids(w, "vendor", "/v1/leads?limit=200") == set(w.a.lead_ids)
    filtered = await listed_ids(w, "vendor", f"/v1/leads?vendor_id={w.v2}")
    assert not filtered & {*w.b.lead_ids, *w.b.stray_lead_ids}
    assert await listed_ids(w, "vendor", f"/v1/leads?q={w.b.marker}") == set()


@case("GET", "/v1/leads/{lead_id}")
async def _get_lead(w: World, db: asyncpg.Connection) -> None:
    for who in ("owner", "key", "vendor"):
        for lead in (w.b.lead_ids[0], w.b.stray_lead_ids[0]):
            await attempt(w, who, "GET", "/v1/leads/{lead_id}", {"lead_id": lead}, 404)
        shown = await fetch(w, who, f"/v1/leads/{w.a.lead_ids[0]}")
        assert shown.json()["workspace_id"] == str(w.a.workspace_id)


@case("PATCH", "/v1/leads/{lead_id}")
async def _update_lead(w: World, db: asyncpg.Connection) -> None:
    def change(ids: dict[str, uuid.UUID]) -> dict[str, Any]:
        return {"status": "accepted", "notes": "taken over by A"}

    for who in ("owner", "key"):
        for lead in (w.b.lead_ids[0], w.b.stray_lead_ids[0]):
            await attempt(
                w, who, "PATCH", "/v1/leads/{lead_id}", {"lead_id": lead}, 404, body=change
            )
    for lead in (w.b.lead_ids[0], w.b.stray_lead_ids[0], w.a.lead_ids[0]):
        await attempt(
            w, "vendor", "PATCH", "/v1/leads/{lead_id}", {"lead_id": lead}, 403, body=change
        )
    # The endpoint works for A's own lead, so the 404s above are about tenancy.
    await fetch(w, "owner", f"/v1/leads/{w.a.lead_ids[1]}", method="PATCH", json={"notes": "ours"})


@case("GET", "/v1/links")
async def _list_links(w: World, db: asyncpg.Connection) -> None:
    mine = await ids_as_owner(
        db, "SELECT id FROM vendor_links WHERE workspace_id = $1", w.a.workspace_id
    )
    assert w.a.link_id in mine
    for who in ("owner", "key"):
        assert await listed_ids(w, who, "/v1/links?limit=200") == mine
    # The vendor's view: links to V1, whoever made them; never credentials.
    to_v1 = await ids_as_owner(db, "SELECT id FROM vendor_links WHERE vendor_id = $1", w.v1)
    assert await listed_ids(w, "vendor", "/v1/links?limit=200") == to_v1
    for who in ("owner", "key", "vendor"):
        response = await fetch(w, who, "/v1/links")
        assert w.a.credential not in response.text
        for item in response.json()["items"]:
            assert "credentials" not in item
            assert "credentials_encrypted" not in item


@case("POST", "/v1/links")
async def _create_link(w: World, db: asyncpg.Connection) -> None:
    smuggled = {
        "vendor_id": str(w.v2),
        "connector": "generic_rest",
        "workspace_id": str(w.b.workspace_id),
    }
    for who in ("owner", "key"):
        await fetch(w, who, "/v1/links", 422, method="POST", json=smuggled)
    await fetch(
        w,
        "vendor",
        "/v1/links",
        403,
        method="POST",
        json={"vendor_id": str(w.v1), "connector": "generic_rest"},
    )


def _link_cases(method: str, suffix: str, vendor_status: int) -> Case:
    async def run(w: World, db: asyncpg.Connection) -> None:
        template = "/v1/links/{link_id}" + suffix
        body = None
        if method == "PATCH":
            body = _smuggle({"config": {"base_url": "https://attacker.example"}})
        if method == "PUT":
            body = _smuggle({"lead_fields": ["notes", "owner_id"]})
        for who in ("owner", "key"):
            await attempt(w, who, method, template, {"link_id": w.b.link_id}, 404, body=body)
        await attempt(
            w, "vendor", method, template, {"link_id": w.b.link_id}, vendor_status, body=body
        )
        # The same principals reach A's own link (read it; writes are not repeated here).
        shown = await fetch(w, "owner", f"/v1/links/{w.a.link_id}")
        assert shown.json()["status"] == "active"

    return run


for _method, _suffix, _vendor in (
    ("GET", "", 404),
    ("PATCH", "", 403),
    ("DELETE", "", 403),
    ("POST", "/pause", 403),
    ("POST", "/resume", 403),
    ("POST", "/sync", 403),
    ("GET", "/runs", 403),
    ("GET", "/webhooks", 404),
    ("POST", "/webhook-secret", 403),
    ("PUT", "/disclosure", 403),
):
    case(_method, "/v1/links/{link_id}" + _suffix)(_link_cases(_method, _suffix, _vendor))


@case("GET", "/v1/links/{link_id}/runs/{run_id}")
async def _get_run(w: World, db: asyncpg.Connection) -> None:
    theirs = await db.fetchval(
        "SELECT id FROM sync_runs WHERE workspace_id = $1 AND link_id = $2 LIMIT 1",
        w.b.workspace_id,
        w.b.link_id,
    )
    assert theirs is not None
    template = "/v1/links/{link_id}/runs/{run_id}"
    for who in ("owner", "key"):
        await attempt(w, who, "GET", template, {"link_id": w.b.link_id, "run_id": theirs}, 404)
        # B's run under A's own link is no more visible than under B's link
        mixed = await fetch(w, who, f"/v1/links/{w.a.link_id}/runs/{theirs}", 404)
        assert str(w.b.link_id) not in mixed.text
        assert "manual" not in mixed.text
        runs = await fetch(w, who, f"/v1/links/{w.a.link_id}/runs?limit=200")
        assert str(theirs) not in runs.text
    await attempt(w, "vendor", "GET", template, {"link_id": w.b.link_id, "run_id": theirs}, 403)


async def _their_delivery(w: World, db: asyncpg.Connection) -> uuid.UUID:
    theirs = await db.fetchval(
        "SELECT id FROM webhook_inbox WHERE workspace_id = $1 AND link_id = $2 LIMIT 1",
        w.b.workspace_id,
        w.b.link_id,
    )
    assert theirs is not None
    return uuid.UUID(str(theirs))


@case("GET", "/v1/links/{link_id}/webhooks/{delivery_id}")
async def _get_webhook(w: World, db: asyncpg.Connection) -> None:
    theirs = await _their_delivery(w, db)
    template = "/v1/links/{link_id}/webhooks/{delivery_id}"
    for who in ("owner", "key"):
        await attempt(w, who, "GET", template, {"link_id": w.b.link_id, "delivery_id": theirs}, 404)
        # B's delivery under A's own link is no more visible than under B's link
        await fetch(w, who, f"/v1/links/{w.a.link_id}/webhooks/{theirs}", 404)
        log = await fetch(w, who, f"/v1/links/{w.a.link_id}/webhooks?limit=200")
        assert str(theirs) not in log.text
    await attempt(
        w, "vendor", "GET", template, {"link_id": w.b.link_id, "delivery_id": theirs}, 404
    )
    # A's vendor reads what it pushed to A's link, and nothing of B's under it
    pushed = await fetch(w, "vendor", f"/v1/links/{w.a.link_id}/webhooks?limit=200")
    mine = await db.fetchval(
        "SELECT count(*) FROM webhook_inbox WHERE workspace_id = $1 AND link_id = $2",
        w.a.workspace_id,
        w.a.link_id,
    )
    assert len(pushed.json()["items"]) == mine > 0
    await fetch(w, "vendor", f"/v1/links/{w.a.link_id}/webhooks/{theirs}", 404)


@case("POST", "/v1/links/{link_id}/webhooks/{delivery_id}/replay")
async def _replay_webhook(w: World, db: asyncpg.Connection) -> None:
    theirs = await _their_delivery(w, db)
    template = "/v1/links/{link_id}/webhooks/{delivery_id}/replay"
    for who in ("owner", "key"):
        await attempt(
            w, who, "POST", template, {"link_id": w.b.link_id, "delivery_id": theirs}, 404
        )
        await fetch(w, who, f"/v1/links/{w.a.link_id}/webhooks/{theirs}/replay", 404, method="POST")
    await attempt(
        w, "vendor", "POST", template, {"link_id": w.b.link_id, "delivery_id": theirs}, 403
    )
    status = await db.fetchval("SELECT status FROM webhook_inbox WHERE id = $1", theirs)
    assert status == "applied", "B's delivery was not replayed"


@case("POST", "/v1/hooks/{link_id}")
async def _push_webhook(w: World, db: asyncpg.Connection) -> None:
    """No credentials at all: whoever pushes to B's link learns no more than about a link
    that does not exist, whichever key they present."""
    headers = {"webhook-id": "msg_1", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"}
    for who in ("owner", "key", "vendor"):
        await attempt(
            w,
            who,
            "POST",
            "/v1/hooks/{link_id}",
            {"link_id": w.b.link_id},
            404,
            headers={**w.headers(who), **headers},
            body=lambda ids: {"data": {"leadId": "L-1"}},
        )


@case("GET", "/v1/members")
async def _list_members(w: World, db: asyncpg.Connection) -> None:
    mine = await ids_as_owner(
        db, "SELECT user_id FROM memberships WHERE workspace_id = $1", w.a.workspace_id
    )
    assert mine == set(w.a.user_ids)
    for who in ("owner", "key"):
        assert await listed_ids(w, who, "/v1/members", key="user_id") == mine
    await fetch(w, "vendor", "/v1/members", 403)


@case("PATCH", "/v1/members/{user_id}")
async def _change_role(w: World, db: asyncpg.Connection) -> None:
    def demote(ids: dict[str, uuid.UUID]) -> dict[str, Any]:
        return {"role": "viewer"}

    for user in w.b.user_ids:
        await attempt(
            w, "owner", "PATCH", "/v1/members/{user_id}", {"user_id": user}, 404, body=demote
        )
        for who in ("key", "vendor"):
            await attempt(
                w, who, "PATCH", "/v1/members/{user_id}", {"user_id": user}, 403, body=demote
            )
    await fetch(
        w, "owner", f"/v1/members/{w.a.member.user_id}", method="PATCH", json={"role": "member"}
    )


@case("DELETE", "/v1/members/{user_id}")
async def _remove_member(w: World, db: asyncpg.Connection) -> None:
    for user in w.b.user_ids:
        await attempt(w, "owner", "DELETE", "/v1/members/{user_id}", {"user_id": user}, 404)
        for who in ("key", "vendor"):
            await attempt(w, who, "DELETE", "/v1/members/{user_id}", {"user_id": user}, 403)


@case("GET", "/v1/invitations")
async def _list_invitations(w: World, db: asyncpg.Connection) -> None:
    pending = await ids_as_owner(
        db,
        "SELECT id FROM invitations WHERE workspace_id = $1 AND accepted_at IS NULL"
        " AND revoked_at IS NULL AND expires_at > now()",
        w.a.workspace_id,
    )
    assert w.a.invitation_id in pending
    assert await listed_ids(w, "owner", "/v1/invitations") == pending
    for who in ("key", "vendor"):
        await fetch(w, who, "/v1/invitations", 403)


@case("POST", "/v1/invitations")
async def _invite(w: World, db: asyncpg.Connection) -> None:
    body = {"email": unique_email("stranger"), "role": "viewer"}
    await fetch(
        w,
        "owner",
        "/v1/invitations",
        422,
        method="POST",
        json={**body, "workspace_id": str(w.b.workspace_id)},
    )
    for who in ("key", "vendor"):
        await fetch(w, who, "/v1/invitations", 403, method="POST", json=body)


@case("DELETE", "/v1/invitations/{invitation_id}")
async def _revoke_invitation(w: World, db: asyncpg.Connection) -> None:
    ids = {"invitation_id": w.b.invitation_id}
    await attempt(w, "owner", "DELETE", "/v1/invitations/{invitation_id}", ids, 404)
    for who in ("key", "vendor"):
        await attempt(w, who, "DELETE", "/v1/invitations/{invitation_id}", ids, 403)


@case("GET", "/v1/api-keys")
async def _list_keys(w: World, db: asyncpg.Connection) -> None:
    mine = await ids_as_owner(
        db, "SELECT id FROM api_keys WHERE workspace_id = $1", w.a.workspace_id
    )
    assert w.a.key_id in mine
    assert await listed_ids(w, "owner", "/v1/api-keys") == mine
    for who in ("key", "vendor"):
        await fetch(w, who, "/v1/api-keys", 403)


@case("POST", "/v1/api-keys")
async def _create_key(w: World, db: asyncpg.Connection) -> None:
    body = {"name": "intruder", "scopes": ["leads:read"]}
    await fetch(
        w,
        "owner",
        "/v1/api-keys",
        422,
        method="POST",
        json={**body, "workspace_id": str(w.b.workspace_id)},
    )
    for who in ("key", "vendor"):
        await fetch(w, who, "/v1/api-keys", 403, method="POST", json=body)


@case("DELETE", "/v1/api-keys/{key_id}")
async def _revoke_key(w: World, db: asyncpg.Connection) -> None:
    ids = {"key_id": w.b.key_id}
    await attempt(w, "owner", "DELETE", "/v1/api-keys/{key_id}", ids, 404)
    for who in ("key", "vendor"):
        await attempt(w, who, "DELETE", "/v1/api-keys/{key_id}", ids, 403)


@case("GET", "/v1/vendors")
async def _list_vendors(w: World, db: asyncpg.Connection) -> None:
    # The catalog is global; it carries nothing of any workspace.
    for who in ("owner", "key", "vendor"):
        response = await fetch(w, who, "/v1/vendors?limit=200")
        for item in response.json()["items"]:
            assert set(item) == {"id", "slug", "name", "kind", "website"}


@case("GET", "/v1/connectors")
async def _list_connectors(w: World, db: asyncpg.Connection) -> None:
    # Installed code, the same for everyone: no tenant's data in it.
    seen = []
    for who in ("owner", "key", "vendor"):
        response = await fetch(w, who, "/v1/connectors")
        seen.append(response.json())
        assert "csv_price_list" in [item["name"] for item in response.json()["items"]]
    assert seen[0] == seen[1] == seen[2]


@case("GET", "/v1/vendors/{vendor_id}")
async def _get_vendor(w: World, db: asyncpg.Connection) -> None:
    for who in ("owner", "key", "vendor"):
        shown = await fetch(w, who, f"/v1/vendors/{w.v2}")
        assert set(shown.json()) == {"id", "slug", "name", "kind", "website"}
        await fetch(w, who, f"/v1/vendors/{uuid.uuid4()}", 404)


@case("GET", "/v1/me")
async def _me(w: World, db: asyncpg.Connection) -> None:
    owner = (await fetch(w, "owner", "/v1/me")).json()
    assert [ws["id"] for ws in owner["workspaces"]] == [str(w.a.workspace_id)]
    assert owner["workspace"]["id"] == str(w.a.workspace_id)
    key = (await fetch(w, "key", "/v1/me")).json()
    assert key["kind"] == "api_key"
    assert key["workspace"]["id"] == str(w.a.workspace_id)
    vendor = (await fetch(w, "vendor", "/v1/me")).json()
    assert vendor["kind"] == "vendor"
    assert vendor["vendor_id"] == str(w.v1)
    assert vendor["workspaces"] == []
    assert vendor.get("workspace") is None


@case("POST", "/v1/workspaces")
async def _create_workspace(w: World, db: asyncpg.Connection) -> None:
    await fetch(
        w,
        "owner",
        "/v1/workspaces",
        422,
        method="POST",
        json={"name": "Mine now", "id": str(w.b.workspace_id)},
    )
    for who in ("key", "vendor"):
        await fetch(w, who, "/v1/workspaces", 403, method="POST", json={"name": "Mine now"})


@case("PATCH", "/v1/workspace")
async def _rename_workspace(w: World, db: asyncpg.Connection) -> None:
    await fetch(
        w,
        "owner",
        "/v1/workspace",
        422,
        method="PATCH",
        json={"name": "Renamed", "id": str(w.b.workspace_id)},
    )
    for who in ("key", "vendor"):
        await fetch(w, who, "/v1/workspace", 403, method="PATCH", json={"name": "Renamed"})
    renamed = await fetch(w, "owner", "/v1/workspace", method="PATCH", json={"name": "Renamed"})
    assert renamed.json()["id"] == str(w.a.workspace_id)
    w.a.name = "Renamed"


@case("POST", "/v1/invitations/accept")
async def _accept_invitation(w: World, db: asyncpg.Connection) -> None:
    # A token naming B's workspace with a made-up secret gets what any made-up token gets.
    def forged(ids: dict[str, uuid.UUID]) -> dict[str, Any]:
        return {"token": f"inv_{ids['workspace'].hex}_{secrets.token_urlsafe(32)}"}

    ids = {"workspace": w.b.workspace_id}
    await attempt(w, "owner", "POST", "/v1/invitations/accept", ids, 404, body=forged)
    for who in ("key", "vendor"):
        await attempt(w, who, "POST", "/v1/invitations/accept", ids, 403, body=forged)


@case("POST", "/v1/auth/login")
async def _log_in(w: World, db: asyncpg.Connection) -> None:
    def into(ids: dict[str, uuid.UUID]) -> dict[str, Any]:
        return {"email": w.a.owner.email, "password": PASSWORD, "workspace_id": str(ids["ws"])}

    await attempt(
        w,
        "A's owner",
        "POST",
        "/v1/auth/login",
        {"ws": w.b.workspace_id},
        403,
        headers={},
        body=into,
    )


@case("POST", "/v1/auth/refresh")
async def _refresh(w: World, db: asyncpg.Connection) -> None:
    refresh_token = (await w.api.login(w.a.owner.email))["refresh_token"]

    def into(ids: dict[str, uuid.UUID]) -> dict[str, Any]:
        return {"refresh_token": refresh_token, "workspace_id": str(ids["ws"])}

    await attempt(
        w,
        "A's owner",
        "POST",
        "/v1/auth/refresh",
        {"ws": w.b.workspace_id},
        403,
        headers={},
        body=into,
    )
    # The refused switch neither spent nor revoked the token; it still refreshes into A.
    tokens = await fetch(
        w,
        "A's owner",
        "/v1/auth/refresh",
        headers={},
        method="POST",
        json={"refresh_token": refresh_token},
    )
    assert tokens.json()["workspace_id"] == str(w.a.workspace_id)


@case("POST", "/v1/auth/logout")
async def _log_out(w: World, db: asyncpg.Connection) -> None:
    # Logging out needs the refresh token itself: a guess ends nobody's session (B's refresh
    # tokens are in the snapshot checked after every case).
    await fetch(
        w,
        "anyone",
        "/v1/auth/logout",
        204,
        method="POST",
        headers={},
        json={"refresh_token": secrets.token_urlsafe(32)},
    )


@case("POST", "/v1/auth/signup")
async def _sign_up(w: World, db: asyncpg.Connection) -> None:
    body = {
        "email": unique_email("newcomer"),
        "password": PASSWORD,
        "name": "Newcomer",
        "workspace_name": w.b.name,
    }
    await fetch(
        w,
        "anyone",
        "/v1/auth/signup",
        422,
        method="POST",
        headers={},
        json={**body, "workspace_id": str(w.b.workspace_id)},
    )
    # Taking B's workspace name gives a workspace of one's own, with nothing of B in it.
    created = await w.http.post("/v1/auth/signup", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["workspace"]["id"] != str(w.b.workspace_id)
    headers = bearer(created.json()["tokens"]["access_token"])
    assert await listed_ids(w, "newcomer", "/v1/leads", headers=headers) == set()
    await attempt(
        w,
        "newcomer",
        "GET",
        "/v1/leads/{lead_id}",
        {"lead_id": w.b.lead_ids[0]},
        404,
        headers=headers,
    )


async def test_every_v1_operation_has_an_isolation_case(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    served = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/v1/")
        for method in operations
        if method in HTTP_METHODS
    }
    assert len(served) > 20
    missing = sorted(served - set(CASES))
    assert not missing, f"add a case to tests/test_isolation_endpoints.py for {missing}"
    assert not sorted(set(CASES) - served), "cases for operations the API no longer serves"


@pytest.mark.parametrize("operation", sorted(CASES), ids=" ".join)
async def test_cross_tenant_attempts_fail_and_leak_nothing(
    operation: tuple[str, str], world: World, admin_db: asyncpg.Connection
) -> None:
    before = await snapshot(admin_db, world.b)
    await CASES[operation](world, admin_db)
    after = await snapshot(admin_db, world.b)
    changed = [table for table in before if before[table] != after[table]]
    assert not changed, f"{operation} changed workspace B's {changed}"
