"""Tenant isolation across a reused connection: one transaction's principal never reaches the
next one on the same pooled connection, whether it ended by commit, rollback, an error or a
cancelled query, and whatever kind of principal came before (a vendor's reset setting must not
break a workspace's next request either)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pane.db.database import (
    Database,
    NotAMember,
    Scope,
    Transaction,
    member_scope,
    user_scope,
    vendor_scope,
    workspace_scope,
)
from pane.errors import NotFound, Unauthenticated
from pane.principal import Role
from tests.conftest import Servers, running_app
from tests.factories import Account, Api, bearer

SETTINGS = ("pane.workspace_id", "pane.vendor_id", "pane.user_id", "pane.api_key_hash")


@dataclass
class Pair:
    """Workspaces A and B. A links V1; B links V2 and V1. Each has leads of its vendors."""

    a: Account
    b: Account
    v1: uuid.UUID
    v2: uuid.UUID
    v1_key: str
    v2_key: str
    a_key: str
    b_key: str
    a_leads: set[uuid.UUID]
    b_leads_v1: set[uuid.UUID]
    b_leads_v2: set[uuid.UUID]

    @property
    def b_leads(self) -> set[uuid.UUID]:
        return self.b_leads_v1 | self.b_leads_v2


@pytest.fixture(scope="module")
async def pair(api: Api) -> Pair:
    v1, v2 = await api.new_vendor(), await api.new_vendor()
    a, b = await api.signup(workspace="Pool A"), await api.signup(workspace="Pool B")
    await api.link(a, v1)
    await api.link(b, v2)
    await api.link(b, v1)
    return Pair(
        a=a,
        b=b,
        v1=v1,
        v2=v2,
        v1_key=await api.vendor_key(v1),
        v2_key=await api.vendor_key(v2),
        a_key=await api.api_key(a, ["leads:read", "leads:write"]),
        b_key=await api.api_key(b, ["leads:read", "leads:write"]),
        a_leads=set(await api.seed_leads(a.workspace_id, v1, 3)),
        b_leads_v1=set(await api.seed_leads(b.workspace_id, v1, 2)),
        b_leads_v2=set(await api.seed_leads(b.workspace_id, v2, 2)),
    )


# --------------------------------------------------------------------------------------------
# A raw connection, every kind of principal after every other


def _principals(p: Pair) -> dict[str, tuple[list[tuple[str, str]], set[uuid.UUID]]]:
    """Settings a transaction makes for each kind of principal, and the leads it must see."""
    return {
        "workspace A": ([("pane.workspace_id", str(p.a.workspace_id))], p.a_leads),
        "workspace B": ([("pane.workspace_id", str(p.b.workspace_id))], p.b_leads),
        "user of A": (
            [("pane.workspace_id", str(p.a.workspace_id)), ("pane.user_id", str(p.a.user_id))],
            p.a_leads,
        ),
        "vendor V1": ([("pane.vendor_id", str(p.v1))], p.a_leads | p.b_leads_v1),
        "vendor V2": ([("pane.vendor_id", str(p.v2))], p.b_leads_v2),
        "account only": ([("pane.user_id", str(p.b.user_id))], set()),
        "key hash": ([("pane.api_key_hash", "00" * 32)], set()),
        "nobody": ([], set()),
    }


async def _visible_leads(db: asyncpg.Connection) -> set[uuid.UUID]:
    return {row["id"] for row in await db.fetch("SELECT id FROM leads")}


async def test_any_principal_after_any_other_on_one_connection(
    pair: Pair, app_db: asyncpg.Connection
) -> None:
    principals = _principals(pair)
    for first, (first_settings, _) in principals.items():
        for second, (second_settings, expected) in principals.items():
            for ending in ("commit", "rollback"):
                transaction = app_db.transaction()
                await transaction.start()
                for name, value in first_settings:
                    await app_db.execute("SELECT set_config($1, $2, true)", name, value)
                await _visible_leads(app_db)
                await getattr(transaction, ending)()
                context = f"{second} after {first} ({ending})"
                async with app_db.transaction():
                    for name in SETTINGS:
                        value = await app_db.fetchval("SELECT current_setting($1, true)", name)
                        assert value in ("", None), f"{context}: {name} = {value}"
                    for name, value in second_settings:
                        await app_db.execute("SELECT set_config($1, $2, true)", name, value)
                    assert await _visible_leads(app_db) == expected, context
                    members = await app_db.fetchval("SELECT count(*) FROM memberships")
                    if second in ("nobody", "key hash"):
                        assert members == 0, context
                        assert await app_db.fetchval("SELECT count(*) FROM workspaces") == 0


# --------------------------------------------------------------------------------------------
# pane's own pool (pane.db.database), of exactly one connection


@dataclass
class Probe:
    pid: int
    role: str
    leads: set[uuid.UUID]
    workspaces: set[uuid.UUID]
    memberships: int
    settings: dict[str, str | None]


async def _leads_seen(connection: asyncpg.Connection) -> tuple[str, set[uuid.UUID]]:
    """The transaction's role and the leads it sees: a vendor's runs as pane_vendor, which
    reads leads through its view only."""
    role = str(await connection.fetchval("SELECT current_user"))
    source = "vendor_leads" if role == "pane_vendor" else "leads"
    return role, {row["id"] for row in await connection.fetch(f"SELECT id FROM {source}")}


async def _probe(tx: Transaction) -> Probe:
    """What the transaction sees, half through the ORM session and half on the driver: both
    run on the one connection, in the one transaction."""
    session = tx.session
    settings = {
        name: await session.scalar(text("SELECT current_setting(:n, true)"), {"n": name})
        for name in SETTINGS
    }
    role, leads = await _leads_seen(tx.connection)
    return Probe(
        pid=int(await tx.connection.fetchval("SELECT pg_backend_pid()")),
        role=role,
        leads=leads,
        workspaces=set((await session.scalars(text("SELECT id FROM workspaces"))).all()),
        memberships=int(await tx.connection.fetchval("SELECT count(*) FROM memberships")),
        settings=settings,
    )


async def _transaction(database: Database, scope: Scope | None = None) -> Probe:
    async with database.transaction(scope, orm=True) as tx:
        return await _probe(tx)


def _assert_clean(probe: Probe, context: str) -> None:
    assert probe.role == "pane_app", f"{context}: a vendor's role outlived its transaction"
    assert probe.leads == set(), context
    assert probe.workspaces == set(), context
    assert probe.memberships == 0, context
    assert all(value in ("", None) for value in probe.settings.values()), (context, probe)


async def test_a_single_pooled_connection_alternates_tenants_cleanly(
    pair: Pair, one_connection: Database
) -> None:
    p = pair
    as_a = member_scope(p.a.workspace_id, p.a.user_id, tuple(Role))
    # A's owner naming B: not a member, so the transaction does not even open.
    as_outsider_of_b = member_scope(p.b.workspace_id, p.a.user_id, tuple(Role))
    steps: list[tuple[str, Scope | None, set[uuid.UUID] | None]] = [
        ("A", as_a, p.a_leads),
        ("B", workspace_scope(p.b.workspace_id), p.b_leads),
        ("nobody", None, None),
        ("V1", vendor_scope(p.v1), p.a_leads | p.b_leads_v1),
        ("A", as_a, p.a_leads),
        ("A's owner naming B", as_outsider_of_b, set()),
        ("B", workspace_scope(p.b.workspace_id), p.b_leads),
        ("A's account", user_scope(p.a.user_id), set()),
        ("nobody", None, None),
    ]
    pids = set()
    previous = "start"
    for _ in range(3):
        for name, scope, expected in steps:
            context = f"{name} after {previous}"
            previous = name
            if scope is as_outsider_of_b:
                with pytest.raises(NotAMember):
                    await _transaction(one_connection, scope)
                continue
            probe = await _transaction(one_connection, scope)
            pids.add(probe.pid)
            if expected is None:
                _assert_clean(probe, context)
            else:
                assert probe.leads == expected, context
            if name == "A's account":
                # A user without a workspace sees their own memberships, nothing more.
                assert probe.memberships == 1, context
                assert probe.leads == set(), context
    assert len(pids) == 1, "the pool of one must have reused its connection"


async def _fail_inside_tenant(
    database: Database,
    pair: Pair,
    statement: str,
    params: dict[str, Any] | None = None,
    *,
    limit_seconds: float | None = None,
) -> None:
    """Enter workspace A, check it is visible, then run a statement that fails."""
    async with database.transaction(workspace_scope(pair.a.workspace_id), orm=True) as tx:
        assert (await _probe(tx)).leads == pair.a_leads
        async with asyncio.timeout(limit_seconds):
            await tx.session.execute(text(statement), params or {})


async def test_a_failed_transaction_leaves_no_tenant_behind(
    pair: Pair, one_connection: Database
) -> None:
    p = pair
    first = await _transaction(one_connection)

    # A statement fails after the tenant was set; the transaction is rolled back.
    with pytest.raises(DBAPIError):
        await _fail_inside_tenant(one_connection, p, "SELECT 1 / 0")
    after_error = await _transaction(one_connection)
    _assert_clean(after_error, "after a failed statement")
    assert after_error.pid == first.pid

    # A write refused by row-level security inside the tenant's transaction.
    with pytest.raises(DBAPIError):
        await _fail_inside_tenant(
            one_connection,
            p,
            "INSERT INTO leads (workspace_id, id, vendor_id, external_id)"
            " VALUES (:ws, :id, :vendor, 'x')",
            {"ws": p.b.workspace_id, "id": uuid.uuid4(), "vendor": p.v1},
        )
    _assert_clean(await _transaction(one_connection), "after a refused write")

    # The task running the transaction is cancelled between statements (a client that went
    # away): the transaction is rolled back.
    entered = asyncio.Event()

    async def abandoned() -> None:
        async with one_connection.transaction(workspace_scope(p.a.workspace_id)) as tx:
            await tx.connection.execute("UPDATE leads SET notes = 'abandoned'")
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(abandoned())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after_cancel = await _transaction(one_connection)
    _assert_clean(after_cancel, "after a cancelled transaction")
    async with one_connection.transaction(workspace_scope(p.a.workspace_id)) as tx:
        notes = await tx.connection.fetch("SELECT notes FROM leads WHERE notes = 'abandoned'")
        assert notes == [], "the cancelled transaction's write must be rolled back"

    # A query cancelled by a timeout while the tenant is set (the connection may be replaced;
    # either way the next transaction starts clean).
    with pytest.raises((TimeoutError, DBAPIError)):
        await _fail_inside_tenant(one_connection, p, "SELECT pg_sleep(5)", limit_seconds=0.2)
    _assert_clean(await _transaction(one_connection), "after a cancelled query")

    # The next tenant gets its own rows and only those.
    assert (
        await _transaction(one_connection, workspace_scope(p.b.workspace_id))
    ).leads == p.b_leads


async def _request(database: Database, pair: Pair, error: BaseException | None = None) -> None:
    """A request's transaction as pane.db.database runs it, scoped to A and read through its
    lazily made ORM session."""
    async with database.transaction(workspace_scope(pair.a.workspace_id), orm=True) as tx:
        assert (await _probe(tx)).leads == pair.a_leads
        if error is not None:
            raise error


async def test_the_request_transaction_ends_the_tenant_on_every_path(
    pair: Pair, one_connection: Database
) -> None:
    """pane.db.database.Database.transaction, the transaction every request runs in."""

    async def assert_clean(context: str) -> None:
        _assert_clean(await _transaction(one_connection), context)

    await _request(one_connection, pair)
    await assert_clean("after a committed request")
    with pytest.raises(NotFound):
        await _request(one_connection, pair, NotFound("no such thing"))
    await assert_clean("after a refused request")
    with pytest.raises(Unauthenticated):
        await _request(
            one_connection, pair, Unauthenticated("refused, keep changes", keep_changes=True)
        )
    await assert_clean("after a refusal that commits")
    with pytest.raises(RuntimeError):
        await _request(one_connection, pair, RuntimeError("a bug in a route"))
    await assert_clean("after an unexpected error")


# --------------------------------------------------------------------------------------------
# Through the API, on an app whose pool is as small as it gets


@pytest.fixture
async def small_pool_http(servers: Servers) -> AsyncIterator[httpx.AsyncClient]:
    async with running_app(servers, db_pool_size=1) as (_, client):
        yield client


async def test_alternating_requests_see_only_their_own_tenant(
    pair: Pair, api: Api, small_pool_http: httpx.AsyncClient
) -> None:
    p = pair
    http = small_pool_http
    lead_a, lead_b = sorted(p.a_leads)[0], sorted(p.b_leads_v2)[0]
    callers: dict[str, tuple[dict[str, str], set[uuid.UUID]]] = {
        "A owner": (p.a.headers, p.a_leads),
        "B owner": (p.b.headers, p.b_leads),
        "A key": (bearer(p.a_key), p.a_leads),
        "B key": (bearer(p.b_key), p.b_leads),
        "V1": (bearer(p.v1_key), p.a_leads | p.b_leads_v1),
        "V2": (bearer(p.v2_key), p.b_leads_v2),
    }

    async def list_as(name: str) -> None:
        headers, expected = callers[name]
        response = await http.get("/v1/leads?limit=200", headers=headers)
        assert response.status_code == 200, (name, response.text)
        assert {uuid.UUID(item["id"]) for item in response.json()["items"]} == expected, name

    async def refused_and_failed() -> None:
        # Requests that end in an error after their tenant was set.
        conflict = await http.patch(
            f"/v1/leads/{lead_a}", json={"status": "converted"}, headers=p.a.headers
        )
        assert conflict.status_code == 409, conflict.text
        stale = await http.patch(
            f"/v1/leads/{lead_b}",
            json={"notes": "x"},
            headers={**p.b.headers, "If-Match": '"999"'},
        )
        assert stale.status_code == 412, stale.text
        assert (await http.get(f"/v1/leads/{lead_b}", headers=p.a.headers)).status_code == 404
        assert (await http.get(f"/v1/leads/{lead_a}", headers=bearer(p.v2_key))).status_code == 404
        assert (await http.get("/v1/leads", headers=bearer("pane_nonsense"))).status_code == 401

    names = list(callers)
    for round_number in range(8):
        rotated = names[round_number % len(names) :] + names[: round_number % len(names)]
        for name in rotated:
            await list_as(name)
            if name in ("V1", "A key"):
                await refused_and_failed()
        # Read one lead right after the other tenant read it.
        assert (await http.get(f"/v1/leads/{lead_b}", headers=p.b.headers)).status_code == 200
        assert (await http.get(f"/v1/leads/{lead_b}", headers=p.a.headers)).status_code == 404

    # And concurrently: the pool of one (plus one overflow) serves interleaved requests.
    await asyncio.gather(*(list_as(name) for name in names * 6))


async def test_many_tenants_through_few_server_connections_never_meet(
    pair: Pair, servers: Servers, app_db: asyncpg.Connection
) -> None:
    """Many clients, interleaved tenants: with PANE_TEST_PGBOUNCER the transactions share four
    server connections, so a setting that outlived its transaction would be seen by the next
    transaction there, or by a statement outside any transaction."""
    database = servers.database(pool_size=12)
    tenants = [
        (workspace_scope(pair.a.workspace_id), pair.a_leads),
        (workspace_scope(pair.b.workspace_id), pair.b_leads),
        (vendor_scope(pair.v2), pair.b_leads_v2),
        (member_scope(pair.a.workspace_id, pair.a.user_id, tuple(Role)), pair.a_leads),
    ]
    leaks: list[str] = []
    outside_lock = asyncio.Lock()  # one probe connection, shared by the clients

    async def client(number: int) -> None:
        for turn in range(12):
            scope, expected = tenants[(number + turn) % len(tenants)]
            async with database.transaction(scope) as tx:
                _, seen = await _leads_seen(tx.connection)
                await asyncio.sleep(0.001 * (number % 3))
                if seen != expected:
                    leaks.append(f"client {number} turn {turn} saw {len(seen)} leads")
            async with outside_lock:
                outside = await app_db.fetchval("SELECT current_setting('pane.workspace_id', true)")
                role = await app_db.fetchval("SELECT current_user")
            if outside not in ("", None):
                leaks.append(f"a statement outside any transaction saw workspace {outside}")
            if role != "pane_app":
                leaks.append(f"a statement outside any transaction ran as {role}")

    try:
        await asyncio.gather(*(client(number) for number in range(24)))
    finally:
        await database.dispose()
    assert leaks == []
