"""Tenant isolation for vendor, API-key and user principals: a vendor key sees its leads only
where a workspace actively links its vendor, and never writes; an API key is bound to its
workspace and dies when revoked or expired; a token naming a workspace its user is not (or no
longer) in opens nothing.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import asyncpg
import httpx

from pane.config import Settings
from pane.services.security import AccessTokens, token_digest
from tests.factories import PASSWORD, Api, bearer
from tests.isolation_world import KEY_SCOPES

# --------------------------------------------------------------------------------------------
# Vendor principals


async def _vendor_view(http: httpx.AsyncClient, key: str) -> set[uuid.UUID]:
    """Every lead the vendor key lists, paging one at a time through the cursor."""
    seen: list[uuid.UUID] = []
    cursor = None
    while True:
        url = "/v1/leads?limit=2" + (f"&cursor={cursor}" if cursor else "")
        response = await http.get(url, headers=bearer(key))
        assert response.status_code == 200, response.text
        seen += [uuid.UUID(item["id"]) for item in response.json()["items"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a lead was listed twice"
    return set(seen)


async def test_vendor_key_sees_its_leads_only_where_actively_linked(
    api: Api, http: httpx.AsyncClient
) -> None:
    v1, v2 = await api.new_vendor(), await api.new_vendor("distributor")
    k1, k2 = await api.vendor_key(v1), await api.vendor_key(v2)
    both = await api.signup(workspace="Links V1 and V2")
    active = await api.signup(workspace="Links V1")
    paused = await api.signup(workspace="Pauses V1")
    unlinked = await api.signup(workspace="Unlinks V1")
    never = await api.signup(workspace="Never links V1")
    links = {
        "both": await api.link(both, v1),
        "both_v2": await api.link(both, v2),
        "active": await api.link(active, v1),
        "paused": await api.link(paused, v1),
        "unlinked": await api.link(unlinked, v1),
        "never_v2": await api.link(never, v2),
    }
    leads = {
        "both": await api.seed_leads(both.workspace_id, v1, 2),
        "both_v2": await api.seed_leads(both.workspace_id, v2, 2),
        "active": await api.seed_leads(active.workspace_id, v1, 2),
        "paused": await api.seed_leads(paused.workspace_id, v1, 2),
        "unlinked": await api.seed_leads(unlinked.workspace_id, v1, 2),
        # Leads carrying V1's id in a workspace that never linked V1.
        "never": await api.seed_leads(never.workspace_id, v1, 2),
        "never_v2": await api.seed_leads(never.workspace_id, v2, 1),
    }
    everything = {lead for ids in leads.values() for lead in ids}

    def of(*names: str) -> set[uuid.UUID]:
        return {lead for name in names for lead in leads[name]}

    assert (
        await http.post(f"/v1/links/{links['paused']['id']}/pause", headers=paused.headers)
    ).json()["status"] == "paused"
    deleted = await http.delete(f"/v1/links/{links['unlinked']['id']}", headers=unlinked.headers)
    assert deleted.status_code == 204

    async def check(key: str, expected: set[uuid.UUID]) -> None:
        assert await _vendor_view(http, key) == expected
        for lead in everything:
            response = await http.get(f"/v1/leads/{lead}", headers=bearer(key))
            assert response.status_code == (200 if lead in expected else 404), (lead, response.text)

    await check(k1, of("both", "active"))
    await check(k2, of("both_v2", "never_v2"))

    # Resuming brings the paused workspace's leads back; pausing another hides its leads.
    resumed = await http.post(f"/v1/links/{links['paused']['id']}/resume", headers=paused.headers)
    assert resumed.status_code == 200
    assert resumed.json()["status"] == "active"
    await check(k1, of("both", "active", "paused"))
    hidden = await http.post(f"/v1/links/{links['active']['id']}/pause", headers=active.headers)
    assert hidden.status_code == 200
    await check(k1, of("both", "paused"))

    # The workspaces themselves still see all their own leads, linked or not.
    never_view = await http.get("/v1/leads", headers=never.headers)
    assert {uuid.UUID(i["id"]) for i in never_view.json()["items"]} == of("never", "never_v2")

    # Links: a vendor key lists only links to its vendor, and never their credentials.
    listed = await http.get("/v1/links?limit=200", headers=bearer(k1))
    assert listed.status_code == 200
    items = listed.json()["items"]
    # Active links to V1 are listed; a paused one may be (the vendor knows of it); a deleted one
    # or a link to another vendor never is.
    shown_links = {item["id"] for item in items}
    assert {links["both"]["id"], links["paused"]["id"]} <= shown_links
    assert shown_links <= {links[name]["id"] for name in ("both", "active", "paused")}
    assert all(item["vendor_id"] == str(v1) for item in items)
    assert "s3cret-vendor-key" not in listed.text
    assert all("credentials" not in item for item in items)
    for name in ("both_v2", "never_v2", "unlinked"):
        response = await http.get(f"/v1/links/{links[name]['id']}", headers=bearer(k1))
        assert response.status_code == 404, response.text

    # A vendor key reads; it never writes, nor sees who works in a workspace.
    visible = next(iter(of("both")))
    patched = await http.patch(f"/v1/leads/{visible}", json={"notes": "x"}, headers=bearer(k1))
    assert patched.status_code == 403, patched.text
    for path in ("/v1/members", "/v1/api-keys", "/v1/invitations"):
        response = await http.get(path, headers=bearer(k1))
        assert response.status_code == 403, (path, response.text)
    pause = await http.post(f"/v1/links/{links['both']['id']}/pause", headers=bearer(k1))
    assert pause.status_code == 403, pause.text


async def test_linking_the_same_vendor_shares_nothing_between_workspaces(
    api: Api, http: httpx.AsyncClient
) -> None:
    vendor = await api.new_vendor()
    key = await api.vendor_key(vendor)
    first, second = await api.signup(), await api.signup()
    await api.link(first, vendor)
    await api.link(second, vendor)
    first_leads = set(await api.seed_leads(first.workspace_id, vendor, 2))
    second_leads = set(await api.seed_leads(second.workspace_id, vendor, 2))

    async def view(headers: dict[str, str], query: str = "") -> set[uuid.UUID]:
        response = await http.get(f"/v1/leads?limit=200{query}", headers=headers)
        assert response.status_code == 200, response.text
        return {uuid.UUID(item["id"]) for item in response.json()["items"]}

    assert await view(first.headers) == first_leads
    assert await view(first.headers, f"&vendor_id={vendor}") == first_leads
    assert await view(second.headers, f"&vendor_id={vendor}") == second_leads
    assert await view(bearer(key)) == first_leads | second_leads
    for lead in second_leads:
        response = await http.get(f"/v1/leads/{lead}", headers=first.headers)
        assert response.status_code == 404


# --------------------------------------------------------------------------------------------
# API-key and user principals


async def test_api_keys_are_bound_to_their_workspace_and_die_when_revoked(
    api: Api, http: httpx.AsyncClient, admin_db: asyncpg.Connection
) -> None:
    vendor = await api.new_vendor()
    owner = await api.signup()
    await api.link(owner, vendor)
    leads = await api.seed_leads(owner.workspace_id, vendor, 2)
    reader = await api.api_key(owner, ["leads:read"])
    revoked = await api.api_key(owner, KEY_SCOPES)
    expired = await api.api_key(owner, KEY_SCOPES)

    for key in (reader, revoked, expired):
        response = await http.get("/v1/leads", headers=bearer(key))
        assert response.status_code == 200
        assert {uuid.UUID(i["id"]) for i in response.json()["items"]} == set(leads)

    # A key does only what its scopes say.
    refused = await http.patch(f"/v1/leads/{leads[0]}", json={"notes": "x"}, headers=bearer(reader))
    assert refused.status_code == 403
    assert (await http.get("/v1/links", headers=bearer(reader))).status_code == 403

    keys = (await http.get("/v1/api-keys", headers=owner.headers)).json()["items"]
    revoked_id = next(
        k["id"] for k in keys if revoked.startswith(k["prefix"]) and k["scopes"] == KEY_SCOPES
    )
    assert (
        await http.delete(f"/v1/api-keys/{revoked_id}", headers=owner.headers)
    ).status_code == 200
    await admin_db.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE key_hash = $1",
        token_digest(expired),
    )
    for key in (revoked, expired):
        for method, path in (
            ("GET", "/v1/leads"),
            ("GET", f"/v1/leads/{leads[0]}"),
            ("PATCH", f"/v1/leads/{leads[0]}"),
            ("GET", "/v1/links"),
            ("GET", "/v1/me"),
        ):
            response = await http.request(
                method,
                path,
                headers=bearer(key),
                json={"notes": "x"} if method == "PATCH" else None,
            )
            assert response.status_code == 401, (method, path, response.text)
            assert str(leads[0]) not in response.text.replace(path, "")
    # A key that never existed is refused the same way.
    assert (await http.get("/v1/leads", headers=bearer("pane_" + "x" * 43))).status_code == 401


async def test_a_token_naming_a_workspace_its_user_is_not_in_opens_nothing(
    api: Api, http: httpx.AsyncClient, settings: Settings
) -> None:
    vendor = await api.new_vendor()
    owner = await api.signup(workspace=f"Bravo {secrets.token_hex(3)}")
    await api.link(owner, vendor)
    leads = await api.seed_leads(owner.workspace_id, vendor, 2)
    link_id = (await http.get("/v1/links", headers=owner.headers)).json()["items"][0]["id"]
    leaver = await api.member(owner, "admin")
    assert (await http.get("/v1/leads", headers=leaver.headers)).status_code == 200
    removed = await http.delete(f"/v1/members/{leaver.user_id}", headers=owner.headers)
    assert removed.status_code == 204

    # A user who was never a member, holding a validly signed token that names the workspace.
    outsider = await api.signup()
    tokens = AccessTokens(settings.token_signing_key.get_secret_value().encode(), 300)
    forged = bearer(tokens.issue(user_id=outsider.user_id, workspace_id=owner.workspace_id))

    secrets_of_b = [str(owner.workspace_id), owner.email, *(str(lead) for lead in leads), link_id]
    attempts: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/v1/leads", None),
        ("GET", f"/v1/leads/{leads[0]}", None),
        ("PATCH", f"/v1/leads/{leads[0]}", {"notes": "x"}),
        ("GET", "/v1/links", None),
        ("GET", f"/v1/links/{link_id}", None),
        ("POST", f"/v1/links/{link_id}/pause", None),
        ("GET", "/v1/members", None),
        ("PATCH", f"/v1/members/{owner.user_id}", {"role": "viewer"}),
        ("DELETE", f"/v1/members/{owner.user_id}", None),
        ("GET", "/v1/api-keys", None),
        ("POST", "/v1/api-keys", {"name": "x", "scopes": ["leads:read"]}),
        ("GET", "/v1/invitations", None),
        ("POST", "/v1/invitations", {"email": "x@example.com"}),
        ("PATCH", "/v1/workspace", {"name": "x"}),
    ]
    for headers in (leaver.headers, forged):
        for method, path, body in attempts:
            response = await http.request(method, path, headers=headers, json=body)
            assert response.status_code == 403, (method, path, response.text)
            visible = response.text.replace(path, "")
            assert not [s for s in secrets_of_b if s in visible], (method, path, response.text)
        me = (await http.get("/v1/me", headers=headers)).json()
        assert str(owner.workspace_id) not in [ws["id"] for ws in me["workspaces"]]
        assert me.get("workspace") is None

    # Nor can either of them log in or refresh into it.
    for account in (leaver, outsider):
        response = await http.post(
            "/v1/auth/login",
            json={
                "email": account.email,
                "password": PASSWORD,
                "workspace_id": str(owner.workspace_id),
            },
        )
        assert response.status_code == 403, response.text
    refreshed = await http.post("/v1/auth/refresh", json={"refresh_token": leaver.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["workspace_id"] != str(owner.workspace_id)
