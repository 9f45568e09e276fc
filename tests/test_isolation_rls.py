"""Tenant isolation in the database, as the runtime role ``pane_app``: nothing is visible
without a tenant setting, a setting shows exactly one workspace, writes across the line are
refused (and updates and deletes touch nothing), settings never outlive their transaction, and the
security-definer helpers reveal no more than they must. Vendor and account settings read but never
write.

Row-level security in the catalog and the runtime role's privileges are checked in
``test_isolation_catalog.py``; pooled connections carrying a tenant from one transaction into the
next in ``test_isolation_pool.py``.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from pane.ids import new_id
from pane.services.security import token_digest
from tests.factories import Api
from tests.isolation_world import (
    NAMED_TENANT_TABLES,
    World,
    build_world,
    snapshot,
    tenant_tables,
    workspace_tables,
)


@pytest.fixture(scope="module")
async def world(api: Api, http: httpx.AsyncClient) -> World:
    return await build_world(api, http)


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
            "INSERT INTO events (workspace_id, seq, id, type, entity_id, actor_type, document)"
            " VALUES ($1, 1000000, $2, 'lead.created', $2, 'user', '{}')",
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
