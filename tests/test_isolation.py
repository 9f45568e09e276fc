"""Tenant isolation: what one workspace, API key or vendor can see and change of another's.

Three layers are tested. The database: as the runtime role ``pane_app`` nothing is visible
without a tenant setting, a setting shows exactly one workspace, writes across the line are
refused, and every tenant table has forced row-level security (discovered from the catalog, so a
new table without it fails here). The start-up guard: pane refuses a runtime role that row-level
security would not hold back. The API: every ``/v1`` operation in the OpenAPI document has a case
below in which workspace A's owner, A's API key and vendor V1's key try workspace B's ids; they
get 403/404 exactly as for ids that do not exist, learn nothing of B, and change none of B's rows.

Pooled connections carrying a tenant from one transaction into the next are covered in
``test_isolation_pool.py``.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

from pane.app import create_app
from pane.config import Settings
from pane.db.engine import create_engine
from pane.db.safety import UnsafeDatabaseRole, assert_runtime_role_is_safe
from pane.ids import new_id
from pane.principal import API_KEY_SCOPES
from pane.services.pagination import encode_cursor
from pane.services.security import AccessTokens, token_digest
from tests.conftest import Servers, make_settings
from tests.factories import PASSWORD, Account, Api, bearer, unique_email

KEY_SCOPES = sorted(scope.value for scope in API_KEY_SCOPES)
# The tables the issue names; the catalog-driven tests find any others.
NAMED_TENANT_TABLES = (
    "leads",
    "memberships",
    "invitations",
    "api_keys",
    "vendor_links",
    "events",
    "audit_log",
    "workspaces",
    "vendor_api_keys",
)
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------------
# Catalog helpers


async def workspace_tables(db: asyncpg.Connection) -> list[str]:
    """Every table in ``public`` with a ``workspace_id`` column."""
    rows = await db.fetch(
        """
        SELECT c.relname FROM pg_class c
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'workspace_id'
                           AND NOT a.attisdropped
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
        ORDER BY c.relname
        """
    )
    return [row["relname"] for row in rows]


async def tenant_tables(db: asyncpg.Connection) -> list[str]:
    """Tables with a ``workspace_id`` column, and the tables those columns reference
    (``workspaces`` itself, whose key is the tenant)."""
    referenced = await db.fetch(
        """
        SELECT DISTINCT t.relname FROM pg_constraint con
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY (con.conkey)
        JOIN pg_class t ON t.oid = con.confrelid
        WHERE con.contype = 'f' AND a.attname = 'workspace_id'
          AND con.connamespace = 'public'::regnamespace
        """
    )
    return sorted(set(await workspace_tables(db)) | {row["relname"] for row in referenced})


def _tenant_expression(clause: str | None) -> bool:
    """A policy clause that depends on the principal (a ``pane.*`` setting, directly or
    through a ``pane_*`` function)."""
    return clause is not None and ("current_setting" in clause or "pane_" in clause)


async def rls_problems(db: asyncpg.Connection) -> list[str]:
    """What is wrong with row-level security on the tenant tables; empty when all is well."""
    problems = []
    for table in await tenant_tables(db):
        flags = await db.fetchrow(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class"
            " WHERE oid = ('public.' || quote_ident($1))::regclass",
            table,
        )
        if not flags["relrowsecurity"]:
            problems.append(f"{table}: row-level security is not enabled")
        if not flags["relforcerowsecurity"]:
            problems.append(f"{table}: row-level security is not forced")
        policies = await db.fetch(
            "SELECT policyname, permissive, cmd, qual, with_check FROM pg_policies"
            " WHERE schemaname = 'public' AND tablename = $1",
            table,
        )
        guarded = [
            policy
            for policy in policies
            if policy["cmd"] == "ALL"
            and policy["permissive"] == "PERMISSIVE"
            and _tenant_expression(policy["qual"])
            and _tenant_expression(policy["with_check"])
        ]
        if not guarded:
            problems.append(
                f"{table}: no policy for ALL commands with both USING and WITH CHECK on the "
                "tenant settings"
            )
        for policy in policies:
            for clause in ("qual", "with_check"):
                if policy[clause] is not None and policy[clause].strip("() ") == "true":
                    problems.append(f"{table}: policy {policy['policyname']} lets every row in")
    return problems


async def ids_as_owner(db: asyncpg.Connection, sql: str, *args: Any) -> set[uuid.UUID]:
    return {row[0] for row in await db.fetch(sql, *args)}


# --------------------------------------------------------------------------------------------
# Two workspaces and two vendors


@dataclass
class Tenant:
    label: str
    name: str
    owner: Account
    member: Account
    vendor_id: uuid.UUID
    link_id: uuid.UUID
    lead_ids: list[uuid.UUID]
    key: str
    key_id: uuid.UUID
    key_prefix: str
    invitation_id: uuid.UUID
    invitation_email: str
    marker: str
    credential: str
    # Leads of a vendor this workspace never linked (as an old sync could have left them).
    stray_lead_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def workspace_id(self) -> uuid.UUID:
        return self.owner.workspace_id

    @property
    def user_ids(self) -> list[uuid.UUID]:
        return [self.owner.user_id, self.member.user_id]

    def secrets(self) -> list[str]:
        """Strings that must never reach another tenant."""
        return [
            str(self.workspace_id),
            self.name,
            self.marker,
            self.credential,
            str(self.owner.user_id),
            self.owner.email,
            str(self.member.user_id),
            self.member.email,
            str(self.link_id),
            self.key,
            str(self.key_id),
            self.key_prefix,
            str(self.invitation_id),
            self.invitation_email,
            *(str(lead) for lead in [*self.lead_ids, *self.stray_lead_ids]),
        ]


async def build_tenant(api: Api, label: str, vendor_id: uuid.UUID) -> Tenant:
    tag = secrets.token_hex(4)
    marker = f"{label.lower()}marker{tag}"
    name = f"{label} Reseller {tag}"
    owner = await api.signup(email=unique_email(f"{label.lower()}-owner"), workspace=name)
    member = await api.member(owner, "member")
    credential = f"cred-{secrets.token_hex(8)}"
    link = await api.link(owner, vendor_id, credentials={"api_key": credential})
    lead_ids = await api.seed_leads(
        owner.workspace_id,
        vendor_id,
        3,
        first_name=marker,
        domain=f"{marker}.example",
        company=f"{marker} GmbH",
    )
    issued = await api.http.post(
        "/v1/api-keys", json={"name": f"{label} CRM", "scopes": KEY_SCOPES}, headers=owner.headers
    )
    assert issued.status_code == 201, issued.text
    invitation_email = unique_email(f"{label.lower()}-invitee")
    invited = await api.http.post(
        "/v1/invitations",
        json={"email": invitation_email, "role": "viewer"},
        headers=owner.headers,
    )
    assert invited.status_code == 201, invited.text
    return Tenant(
        label=label,
        name=name,
        owner=owner,
        member=member,
        vendor_id=vendor_id,
        link_id=uuid.UUID(link["id"]),
        lead_ids=lead_ids,
        key=issued.json()["key"],
        key_id=uuid.UUID(issued.json()["id"]),
        key_prefix=issued.json()["prefix"],
        invitation_id=uuid.UUID(invited.json()["id"]),
        invitation_email=invitation_email,
        marker=marker,
        credential=credential,
    )


@dataclass
class World:
    http: httpx.AsyncClient
    api: Api
    a: Tenant
    b: Tenant
    v1: uuid.UUID
    v2: uuid.UUID
    v1_key: str
    v2_key: str

    def headers(self, principal: str) -> dict[str, str]:
        """A's three kinds of principal: its owner, its API key, and the vendor A links."""
        return {
            "owner": self.a.owner.headers,
            "key": bearer(self.a.key),
            "vendor": bearer(self.v1_key),
        }[principal]


@pytest.fixture(scope="module")
async def world(api: Api, http: httpx.AsyncClient) -> World:
    """Workspace A links vendor V1, workspace B links V2; B also holds leads of V1, which it
    never linked. Both have an owner, a member, an API key with every grantable scope, a pending
    invitation, a link with credentials and leads. Cases must leave A's link active."""
    v1, v2 = await api.new_vendor(), await api.new_vendor()
    a = await build_tenant(api, "Alpha", v1)
    b = await build_tenant(api, "Bravo", v2)
    b.stray_lead_ids = await api.seed_leads(
        b.workspace_id, v1, 2, first_name=b.marker, domain=f"{b.marker}.example"
    )
    return World(
        http=http,
        api=api,
        a=a,
        b=b,
        v1=v1,
        v2=v2,
        v1_key=await api.vendor_key(v1),
        v2_key=await api.vendor_key(v2),
    )


def assert_no_leak(text: str, tenant: Tenant, context: str) -> None:
    lowered = text.lower()
    leaked = [secret for secret in tenant.secrets() if secret.lower() in lowered]
    assert not leaked, f"{context} leaked {tenant.label}'s {leaked}: {text}"


def _without(text: str, values: Iterable[object]) -> str:
    for value in values:
        text = text.replace(str(value), "<id>")
    return text


async def attempt(
    w: World,
    who: str,
    method: str,
    template: str,
    ids: dict[str, uuid.UUID],
    expected: int,
    *,
    headers: dict[str, str] | None = None,
    body: Callable[[dict[str, uuid.UUID]], dict[str, Any]] | None = None,
) -> httpx.Response:
    """Try ``ids`` (B's) and, as a control, fresh ids that exist nowhere: both must get
    ``expected`` with the same body once the ids are blanked out, so the answer tells the
    caller nothing it did not already know, not even whether B's row exists."""
    if headers is None:
        headers = w.headers(who)
    decoys = {name: uuid.uuid4() for name in ids}
    responses = []
    for values in (ids, decoys):
        responses.append(
            await w.http.request(
                method,
                template.format(**values),
                headers=headers,
                json=body(values) if body else None,
            )
        )
    real, control = responses
    context = f"{who}: {method} {template} with {w.b.label}'s ids"
    assert real.status_code == expected, f"{context}: {real.status_code} {real.text}"
    assert control.status_code == expected, f"{context} (control): {control.text}"
    assert _without(real.text, ids.values()) == _without(control.text, decoys.values()), context
    assert_no_leak(_without(real.text, ids.values()), w.b, context)
    return real


async def fetch(
    w: World,
    who: str,
    url: str,
    expected: int = 200,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> httpx.Response:
    response = await w.http.request(
        method, url, headers=headers if headers is not None else w.headers(who), json=json
    )
    assert response.status_code == expected, f"{who}: {method} {url}: {response.text}"
    assert_no_leak(response.text, w.b, f"{who}: {method} {url}")
    return response


async def listed_ids(
    w: World, who: str, url: str, *, headers: dict[str, str] | None = None, key: str = "id"
) -> set[uuid.UUID]:
    body = (await fetch(w, who, url, headers=headers)).json()
    items = body["items"] if isinstance(body, dict) else body
    if isinstance(body, dict):
        assert body["next_cursor"] is None, "expected a single page"
    return {uuid.UUID(item[key]) for item in items}


async def snapshot(db: asyncpg.Connection, tenant: Tenant) -> dict[str, list[str]]:
    """Every row of the tenant, read past RLS as the owner."""
    rows: dict[str, list[str]] = {}
    for table in await workspace_tables(db):
        found = await db.fetch(
            f'SELECT to_jsonb(t)::text AS row FROM "{table}" t WHERE workspace_id = $1 ORDER BY 1',
            tenant.workspace_id,
        )
        rows[table] = [row["row"] for row in found]
    for table, where, value in (
        ("workspaces", "id = $1", tenant.workspace_id),
        ("users", "id = ANY($1::uuid[])", tenant.user_ids),
        ("refresh_tokens", "user_id = ANY($1::uuid[])", tenant.user_ids),
    ):
        found = await db.fetch(
            f"SELECT to_jsonb(t)::text AS row FROM {table} t WHERE {where} ORDER BY 1", value
        )
        rows[table] = [row["row"] for row in found]
    assert all(rows[table] for table in ("leads", "memberships", "api_keys")), "nothing to guard?"
    return rows


# --------------------------------------------------------------------------------------------
# One case per /v1 operation

Case = Callable[[World, asyncpg.Connection], Awaitable[None]]
CASES: dict[tuple[str, str], Case] = {}


def case(method: str, path: str) -> Callable[[Case], Case]:
    def register(function: Case) -> Case:
        assert (method, path) not in CASES
        CASES[(method, path)] = function
        return function

    return register


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
):
    case(_method, "/v1/links/{link_id}" + _suffix)(_link_cases(_method, _suffix, _vendor))


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
    assert not missing, f"add a case to tests/test_isolation.py for {missing}"
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


# --------------------------------------------------------------------------------------------
# Cursors


def _forge(kind: str, value: uuid.UUID) -> str:
    return encode_cursor(kind, [value])


async def test_forged_and_foreign_cursors_reveal_nothing_of_another_workspace(
    world: World,
) -> None:
    w = world
    b_leads = {*w.b.lead_ids, *w.b.stray_lead_ids}
    # B's own cursor, taken from B's first page.
    response = await w.http.get("/v1/leads?limit=1", headers=w.b.owner.headers)
    page = response.json()
    assert page["next_cursor"], "B has more than one lead"
    foreign = page["next_cursor"]
    top = uuid.UUID(int=(1 << 128) - 1)
    cursors = [
        foreign,
        _forge("leads", top),
        _forge("leads", max(b_leads)),
        _forge("leads", uuid.UUID(int=0)),
    ]
    for who in ("owner", "key", "vendor"):
        visible = set(w.a.lead_ids)
        for cursor in cursors:
            seen = await listed_ids(w, who, f"/v1/leads?limit=200&cursor={cursor}")
            assert seen <= visible, (who, cursor)
        # Paging all the way with A's own cursors never crosses into B.
        collected: set[uuid.UUID] = set()
        cursor = None
        while True:
            url = "/v1/leads?limit=1" + (f"&cursor={cursor}" if cursor else "")
            body = (await fetch(w, who, url)).json()
            collected |= {uuid.UUID(item["id"]) for item in body["items"]}
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert collected == visible
        links_after_nothing = await listed_ids(
            w, who, f"/v1/links?limit=200&cursor={_forge('links', uuid.UUID(int=0))}"
        )
        assert w.b.link_id not in links_after_nothing
        # A cursor of another list, or garbage, is refused rather than reinterpreted.
        for bad in (_forge("links", top), base64.urlsafe_b64encode(b"{}").decode(), "x" * 40):
            await fetch(w, who, f"/v1/leads?cursor={bad}", 400)


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


# --------------------------------------------------------------------------------------------
# The database, as the runtime role


async def _set_workspace(db: asyncpg.Connection, workspace_id: uuid.UUID) -> None:
    await db.execute("SELECT set_config('pane.workspace_id', $1, true)", str(workspace_id))


async def _count(db: asyncpg.Connection, table: str, where: str = "true", *args: Any) -> int:
    return int(await db.fetchval(f'SELECT count(*) FROM "{table}" WHERE {where}', *args))


async def test_runtime_role_sees_no_tenant_rows_without_a_setting(
    world: World, admin_db: asyncpg.Connection, app_db: asyncpg.Connection
) -> None:
    discovered = await admin_db.fetch(
        "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
        " AND relkind IN ('r', 'p') AND relrowsecurity"
    )
    tables = sorted(
        set(NAMED_TENANT_TABLES)
        | {row["relname"] for row in discovered}
        | set(await tenant_tables(admin_db))
    )
    for table in tables:
        assert await _count(admin_db, table) > 0, f"no rows in {table} to hide"
        assert await _count(app_db, table) == 0, f"pane_app sees {table} rows with no tenant"
        async with app_db.transaction():
            # An empty setting (what a transaction-local setting reverts to) is no tenant.
            await app_db.execute("SELECT set_config('pane.workspace_id', '', true)")
            await app_db.execute("SELECT set_config('pane.vendor_id', '', true)")
            await app_db.execute("SELECT set_config('pane.user_id', '', true)")
            assert await _count(app_db, table) == 0, table


async def test_workspace_setting_shows_exactly_that_workspace(
    world: World, admin_db: asyncpg.Connection, app_db: asyncpg.Connection
) -> None:
    a = world.a.workspace_id
    async with app_db.transaction():
        await _set_workspace(app_db, a)
        for table in await workspace_tables(admin_db):
            expected = await _count(admin_db, table, "workspace_id = $1", a)
            if table in NAMED_TENANT_TABLES:
                assert expected > 0, f"A has no {table} rows to see"
            assert await _count(app_db, table) == expected, table
            assert await _count(app_db, table, "workspace_id <> $1", a) == 0, table
        assert [row["id"] for row in await app_db.fetch("SELECT id FROM workspaces")] == [a]
        assert await _count(app_db, "vendor_api_keys") == 0


async def test_writes_into_another_workspace_are_refused(
    world: World, app_db: asyncpg.Connection
) -> None:
    a, b = world.a, world.b
    attacks: list[tuple[str, list[Any]]] = [
        (
            "INSERT INTO leads (workspace_id, id, vendor_id, external_id) VALUES ($1, $2, $3, 'x')",
            [b.workspace_id, new_id(), b.vendor_id],
        ),
        (
            "INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, 'owner')",
            [b.workspace_id, a.owner.user_id],
        ),
        (
            "INSERT INTO invitations (workspace_id, id, email, role, token_hash, expires_at)"
            " VALUES ($1, $2, 'x@example.com', 'owner', '\\x00', now() + interval '1 day')",
            [b.workspace_id, new_id()],
        ),
        (
            "INSERT INTO api_keys (workspace_id, id, name, prefix, key_hash, scopes)"
            " VALUES ($1, $2, 'x', 'pane_x', '\\x01', '{leads:read}')",
            [b.workspace_id, new_id()],
        ),
        (
            "INSERT INTO vendor_links (workspace_id, id, vendor_id, connector)"
            " VALUES ($1, $2, $3, 'generic_rest')",
            [b.workspace_id, new_id(), world.v1],
        ),
        (
            "INSERT INTO events (workspace_id, seq, id, entity, entity_id, action, actor_type)"
            " VALUES ($1, 1000000, $2, 'lead', $2, 'created', 'user')",
            [b.workspace_id, new_id()],
        ),
        (
            "INSERT INTO audit_log (workspace_id, id, actor_type, action)"
            " VALUES ($1, $2, 'user', 'x')",
            [b.workspace_id, new_id()],
        ),
        ("INSERT INTO workspaces (id, name) VALUES ($1, 'x')", [new_id()]),
        (
            "INSERT INTO vendor_api_keys (vendor_id, id, name, prefix, key_hash)"
            " VALUES ($1, $2, 'x', 'pane_x', '\\x02')",
            [world.v1, new_id()],
        ),
        # Moving one of A's own rows into B.
        ("UPDATE leads SET workspace_id = $1 WHERE id = $2", [b.workspace_id, a.lead_ids[0]]),
        ("UPDATE api_keys SET workspace_id = $1 WHERE id = $2", [b.workspace_id, a.key_id]),
    ]
    for sql, args in attacks:
        transaction = app_db.transaction()
        await transaction.start()
        try:
            await _set_workspace(app_db, a.workspace_id)
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError, match="row-level"):
                await app_db.execute(sql, *args)
        finally:
            await transaction.rollback()


async def test_updates_and_deletes_of_another_workspace_touch_nothing(
    world: World, admin_db: asyncpg.Connection, app_db: asyncpg.Connection
) -> None:
    a, b = world.a, world.b
    before = await snapshot(admin_db, b)
    transaction = app_db.transaction()
    await transaction.start()
    try:
        await _set_workspace(app_db, a.workspace_id)
        for table in await workspace_tables(admin_db):
            assert (
                await app_db.execute(
                    f'UPDATE "{table}" SET workspace_id = workspace_id WHERE workspace_id = $1',
                    b.workspace_id,
                )
                == "UPDATE 0"
            ), table
            assert (
                await app_db.execute(
                    f'DELETE FROM "{table}" WHERE workspace_id = $1', b.workspace_id
                )
                == "DELETE 0"
            ), table
        assert (
            await app_db.execute(
                "UPDATE workspaces SET name = 'taken' WHERE id = $1", b.workspace_id
            )
            == "UPDATE 0"
        )
        assert (
            await app_db.execute("DELETE FROM workspaces WHERE id = $1", b.workspace_id)
            == "DELETE 0"
        )
        assert (
            await app_db.execute(
                "UPDATE vendor_api_keys SET revoked_at = now() WHERE vendor_id = $1", world.v2
            )
            == "UPDATE 0"
        )
    finally:
        await transaction.commit()
    assert await snapshot(admin_db, b) == before


async def test_settings_do_not_outlive_their_transaction(
    world: World, app_db: asyncpg.Connection
) -> None:
    a = world.a.workspace_id
    current = "SELECT current_setting('pane.workspace_id', true)"
    for ending in ("commit", "rollback"):
        transaction = app_db.transaction()
        await transaction.start()
        await _set_workspace(app_db, a)
        assert await _count(app_db, "leads") == len(world.a.lead_ids)
        await getattr(transaction, ending)()
        assert await app_db.fetchval(current) in ("", None), ending
        assert await _count(app_db, "leads") == 0, ending
        assert await _count(app_db, "workspaces") == 0, ending
    # Outside a transaction block a local setting lasts for its own statement only.
    await _set_workspace(app_db, a)
    assert await _count(app_db, "leads") == 0
    # A failed transaction takes its setting with it too.
    transaction = app_db.transaction()
    await transaction.start()
    await _set_workspace(app_db, a)
    with pytest.raises(asyncpg.exceptions.DivisionByZeroError):
        await app_db.execute("SELECT 1 / 0")
    await transaction.rollback()
    assert await app_db.fetchval(current) in ("", None)
    assert await _count(app_db, "leads") == 0


async def test_entering_a_workspace_needs_a_membership(
    world: World, app_db: asyncpg.Connection
) -> None:
    a, b = world.a, world.b
    async with app_db.transaction():
        role = await app_db.fetchval(
            "SELECT pane_enter_workspace($1, $2)", b.workspace_id, a.owner.user_id
        )
        assert role is None
        assert await app_db.fetchval("SELECT current_setting('pane.workspace_id', true)") == ""
        assert await _count(app_db, "leads") == 0
        assert await _count(app_db, "memberships", "workspace_id = $1", b.workspace_id) == 0
    async with app_db.transaction():
        role = await app_db.fetchval(
            "SELECT pane_enter_workspace($1, $2)", a.workspace_id, a.owner.user_id
        )
        assert role == "owner"
        assert await _count(app_db, "leads") == len(a.lead_ids)
        assert await _count(app_db, "leads", "workspace_id = $1", b.workspace_id) == 0


async def test_authenticating_a_key_reveals_that_key_only(
    world: World, api: Api, app_db: asyncpg.Connection
) -> None:
    a, b = world.a, world.b
    sql = "SELECT * FROM pane_authenticate_key($1)"
    async with app_db.transaction():
        assert await app_db.fetch(sql, token_digest("pane_" + secrets.token_urlsafe(32))) == []
        (row,) = await app_db.fetch(sql, token_digest(b.key))
        assert (row["kind"], row["key_id"], row["workspace_id"]) == (
            "workspace",
            b.key_id,
            b.workspace_id,
        )
        # The hash is forgotten and no workspace entered: nothing stays visible.
        assert await app_db.fetchval("SELECT current_setting('pane.api_key_hash', true)") == ""
        assert await _count(app_db, "api_keys") == 0
        assert await _count(app_db, "leads") == 0
        (vendor_row,) = await app_db.fetch(sql, token_digest(world.v1_key))
        assert (vendor_row["kind"], vendor_row["vendor_id"]) == ("vendor", world.v1)
        assert await _count(app_db, "vendor_api_keys") == 0
    # A revoked key authenticates nobody.
    spare = await api.api_key(a.owner, ["leads:read"])
    keys = (await api.http.get("/v1/api-keys", headers=a.owner.headers)).json()["items"]
    spare_id = next(k["id"] for k in keys if spare.startswith(k["prefix"]))
    revoked = await api.http.delete(f"/v1/api-keys/{spare_id}", headers=a.owner.headers)
    assert revoked.status_code == 200
    async with app_db.transaction():
        assert await app_db.fetch(sql, token_digest(spare)) == []


async def test_vendor_and_account_settings_cannot_write(
    world: World, admin_db: asyncpg.Connection, app_db: asyncpg.Connection
) -> None:
    """A vendor principal reads leads where it is linked; an account-only principal reads its
    memberships. Neither may change, add or remove a row, in any workspace."""
    a, b = world.a, world.b
    before = {tenant.label: await snapshot(admin_db, tenant) for tenant in (a, b)}
    principals = [
        ("pane.vendor_id", str(world.v1)),
        ("pane.user_id", str(a.owner.user_id)),
    ]
    writes: list[tuple[str, list[Any]]] = [
        ("UPDATE leads SET notes = 'vendor was here' WHERE vendor_id = $1", [world.v1]),
        ("DELETE FROM leads WHERE vendor_id = $1", [world.v1]),
        ("UPDATE memberships SET role = 'viewer' WHERE user_id = $1", [a.owner.user_id]),
        ("DELETE FROM memberships WHERE user_id = $1", [a.owner.user_id]),
        ("UPDATE vendor_links SET status = 'paused' WHERE vendor_id = $1", [world.v1]),
        ("DELETE FROM vendor_links WHERE vendor_id = $1", [world.v1]),
        ("UPDATE workspaces SET name = 'taken' WHERE id = $1", [a.workspace_id]),
        (
            "INSERT INTO leads (workspace_id, id, vendor_id, external_id)"
            " VALUES ($1, $2, $3, 'planted')",
            [a.workspace_id, new_id(), world.v1],
        ),
        (
            "INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, 'owner')",
            [b.workspace_id, a.owner.user_id],
        ),
    ]
    for name, value in principals:
        for sql, args in writes:
            transaction = app_db.transaction()
            await transaction.start()
            try:
                await app_db.execute("SELECT set_config($1, $2, true)", name, value)
                try:
                    status = await app_db.execute(sql, *args)
                except asyncpg.exceptions.InsufficientPrivilegeError:
                    continue
                assert status.split()[-1] == "0", f"{name}: {sql} -> {status}"
            finally:
                await transaction.rollback()
    # Nothing above was committed; a write that slipped through would have failed the assert.
    for tenant in (a, b):
        assert await snapshot(admin_db, tenant) == before[tenant.label]


# --------------------------------------------------------------------------------------------
# Row-level security in the catalog


async def test_every_tenant_table_has_forced_rls_with_checked_policies(
    admin_db: asyncpg.Connection,
) -> None:
    tables = await tenant_tables(admin_db)
    assert {"workspaces", "leads", "memberships", "events", "audit_log"} <= set(tables)
    assert await rls_problems(admin_db) == []


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("", "not enabled"),
        ("ALTER TABLE {t} ENABLE ROW LEVEL SECURITY", "not forced"),
        (
            "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; ALTER TABLE {t} FORCE ROW LEVEL SECURITY;"
            " CREATE POLICY p ON {t} USING"
            " (workspace_id = NULLIF(current_setting('pane.workspace_id', true), '')::uuid)",
            "no policy",
        ),
        (
            "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; ALTER TABLE {t} FORCE ROW LEVEL SECURITY;"
            " CREATE POLICY p ON {t} USING"
            " (workspace_id = NULLIF(current_setting('pane.workspace_id', true), '')::uuid)"
            " WITH CHECK"
            " (workspace_id = NULLIF(current_setting('pane.workspace_id', true), '')::uuid);"
            " CREATE POLICY q ON {t} FOR SELECT USING (true)",
            "lets every row in",
        ),
    ],
    ids=["no-rls", "not-forced", "no-with-check", "open-policy"],
)
async def test_the_catalog_check_notices_an_unprotected_table(
    admin_db: asyncpg.Connection, setup: str, expected: str
) -> None:
    table = f"isolation_probe_{secrets.token_hex(4)}"
    async with admin_db.transaction():
        transaction = admin_db.transaction()  # a savepoint, rolled back below
        await transaction.start()
        try:
            await admin_db.execute(f"CREATE TABLE {table} (workspace_id uuid NOT NULL)")
            for statement in filter(str.strip, setup.format(t=table).split(";")):
                await admin_db.execute(statement)
            problems = [p for p in await rls_problems(admin_db) if p.startswith(table)]
            assert expected in " ".join(problems), problems
        finally:
            await transaction.rollback()


def _set_config_calls(text: str) -> list[list[str]]:
    """The top-level arguments of every ``set_config(...)`` call in ``text``."""
    calls = []
    for match in re.finditer(r"set_config\(", text):
        depth, args, current = 1, [], ""
        for char in text[match.end() :]:
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    break
            if char == "," and depth == 1:
                args.append(current.strip())
                current = ""
            else:
                current += char
        calls.append([*args, current.strip()])
    return calls


def test_tenant_settings_are_always_transaction_local() -> None:
    """A session-wide ``set_config(..., false)`` would ride a pooled connection into the next
    request; every call in the code base must pass ``is_local`` true."""
    calls = []
    for path in [*(ROOT / "src").rglob("*.py"), *(ROOT / "migrations").rglob("*.py")]:
        calls += [
            (path.name, args)
            for args in _set_config_calls(path.read_text())
            if "pane." in args[0]  # a real call, not prose like ``set_config(..., true)``
        ]
    assert len(calls) >= 4, "set_config calls not found; has the tenant mechanism moved?"
    wrong = [call for call in calls if len(call[1]) != 3 or call[1][2].lower() != "true"]
    assert not wrong, wrong
    session_level = re.compile(r"\bSET\s+(SESSION\s+)?pane\.", re.IGNORECASE)
    for path in (ROOT / "src").rglob("*.py"):
        assert not session_level.search(path.read_text()), path


# --------------------------------------------------------------------------------------------
# The runtime role, and refusing to start with an unsafe one


async def test_runtime_role_is_unprivileged_and_owns_nothing(
    admin_db: asyncpg.Connection,
) -> None:
    role = await admin_db.fetchrow(
        "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles"
        " WHERE rolname = 'pane_app'"
    )
    assert role is not None
    assert not role["rolsuper"]
    assert not role["rolbypassrls"]
    assert not role["rolcreaterole"]
    assert not role["rolcreatedb"]
    owned = await admin_db.fetch(
        "SELECT relname FROM pg_class WHERE pg_has_role('pane_app', relowner, 'USAGE')"
    )
    assert [row["relname"] for row in owned] == []
    schemas = await admin_db.fetch(
        "SELECT nspname FROM pg_namespace WHERE pg_has_role('pane_app', nspowner, 'USAGE')"
    )
    assert [row["nspname"] for row in schemas] == []
    functions = await admin_db.fetch(
        "SELECT proname FROM pg_proc WHERE pg_has_role('pane_app', proowner, 'USAGE')"
    )
    assert [row["proname"] for row in functions] == []
    # Nor may it act as a role that bypasses RLS.
    bypassing = await admin_db.fetch(
        "SELECT rolname FROM pg_roles WHERE (rolsuper OR rolbypassrls)"
        " AND rolname <> 'pane_app' AND pg_has_role('pane_app', oid, 'USAGE')"
    )
    assert [row["rolname"] for row in bypassing] == []


async def _check_role(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        await assert_runtime_role_is_safe(engine)
    finally:
        await engine.dispose()


async def test_pane_refuses_to_start_as_a_superuser(servers: Servers) -> None:
    await _check_role(servers.app_url)
    with pytest.raises(UnsafeDatabaseRole, match="superuser"):
        await _check_role(servers.admin_url)
    application = create_app(make_settings(servers, database_url=servers.admin_url))
    with pytest.raises(UnsafeDatabaseRole):
        async with LifespanManager(application):
            pass


@pytest.fixture
async def probe_role(
    servers: Servers, admin_db: asyncpg.Connection
) -> AsyncIterator[tuple[str, str]]:
    """A login role of the test's own (and a group role it belongs to), and its URL."""
    name = f"pane_probe_{secrets.token_hex(4)}"
    await admin_db.execute(f"CREATE ROLE {name} LOGIN NOSUPERUSER NOBYPASSRLS")
    await admin_db.execute(f"CREATE ROLE {name}_group NOLOGIN")
    await admin_db.execute(f"GRANT {name}_group TO {name}")
    await admin_db.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
    url = make_url(servers.app_url).set(username=name).render_as_string(hide_password=False)
    try:
        yield name, url
    finally:
        await admin_db.execute(f"DROP OWNED BY {name}, {name}_group CASCADE")
        await admin_db.execute(f"DROP ROLE {name}")
        await admin_db.execute(f"DROP ROLE {name}_group")


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        (["ALTER ROLE {r} BYPASSRLS"], "BYPASSRLS"),
        (
            ["CREATE TABLE {t} (workspace_id uuid)", "ALTER TABLE {t} OWNER TO {r}"],
            "owns",
        ),
        (
            ["CREATE TABLE {t} (workspace_id uuid)", "ALTER TABLE {t} OWNER TO {r}_group"],
            "owns",
        ),
        # Like ``workspaces`` or ``vendor_api_keys``: protected by RLS, keyed by something
        # other than workspace_id. Its owner could switch RLS off.
        (
            [
                "CREATE TABLE {t} (id uuid PRIMARY KEY)",
                "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
                "ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
                "ALTER TABLE {t} OWNER TO {r}",
            ],
            "owns",
        ),
    ],
    ids=["bypassrls", "owns-tenant-table", "member-of-owner", "owns-rls-table"],
)
async def test_pane_refuses_a_role_that_rls_would_not_hold_back(
    probe_role: tuple[str, str], admin_db: asyncpg.Connection, setup: list[str], problem: str
) -> None:
    role, url = probe_role
    table = f"public.isolation_probe_{secrets.token_hex(4)}"
    await _check_role(url)  # a plain role passes
    try:
        for statement in setup:
            await admin_db.execute(statement.format(r=role, t=table))
        with pytest.raises(UnsafeDatabaseRole, match=problem):
            await _check_role(url)
    finally:
        await admin_db.execute(f"DROP TABLE IF EXISTS {table}")
