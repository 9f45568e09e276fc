"""Tenant isolation by construction: every tenant table has forced row-level security with
policies that check the tenant both ways (discovered from the catalog, so a new table without it
fails here); tenant settings are only ever set transaction-locally; the runtime role is
unprivileged and owns nothing, and pane refuses to start with a role that row-level security would
not hold back.

What the runtime role can see and change is tested in ``test_isolation_rls.py``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.engine import make_url

from pane.app import create_app
from pane.db.database import Database
from pane.db.safety import UnsafeDatabaseRole, assert_runtime_role_is_safe
from tests.conftest import Servers, make_settings
from tests.isolation_world import rls_problems, tenant_tables

ROOT = Path(__file__).resolve().parents[1]


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
    # The sync's staging tables are temporary, session-local scratch (and its own, by nature).
    owned = await admin_db.fetch(
        "SELECT relname FROM pg_class WHERE pg_has_role('pane_app', relowner, 'USAGE')"
        " AND relpersistence <> 't'"
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
    database = Database(url, pool_size=1, transaction_pooler=True)
    try:
        await assert_runtime_role_is_safe(database)
    finally:
        await database.dispose()


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
    url = make_url(servers.direct_app_url).set(username=name).render_as_string(hide_password=False)
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
