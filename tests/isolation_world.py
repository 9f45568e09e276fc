"""Shared setup for the tenant-isolation tests (``tests/test_isolation_*.py``).

Two workspaces and two vendors (the ``World``), the catalog helpers that find the tenant tables
and check their row-level security, the helpers that call the API as one tenant and check that
nothing of the other comes back or changes, and the registry of one case per ``/v1`` operation
that ``test_isolation_endpoints.py`` fills. A plain module: each test file that needs the world
declares its own module-scoped ``world`` fixture around ``build_world``.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from pane.principal import API_KEY_SCOPES
from tests.factories import Account, Api, bearer, seed_vendor_content, unique_email

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
    link = await api.link(owner, vendor_id, credentials={"token": credential})
    lead_ids = await api.seed_leads(
        owner.workspace_id,
        vendor_id,
        3,
        first_name=marker,
        domain=f"{marker}.example",
        company=f"{marker} GmbH",
    )
    await seed_vendor_content(
        api.admin_url, owner.workspace_id, vendor_id, uuid.UUID(link["id"]), marker
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


async def build_world(api: Api, http: httpx.AsyncClient) -> World:
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
# The case registry: one case per /v1 operation, registered by test_isolation_endpoints.py

Case = Callable[[World, asyncpg.Connection], Awaitable[None]]
CASES: dict[tuple[str, str], Case] = {}


def case(method: str, path: str) -> Callable[[Case], Case]:
    def register(function: Case) -> Case:
        assert (method, path) not in CASES
        CASES[(method, path)] = function
        return function

    return register
