"""The ORM models are the migrated schema, compared two ways.

``alembic check`` (``pane.db.migrate.check``) finds nothing a migration would change. Where
alembic does not look — index methods, operator classes and predicates, the text of CHECK
constraints, primary keys — the tables the models create are compared with the migrated ones as
PostgreSQL itself renders them. Each comparison is shown to notice a drifted model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import (
    CheckConstraint,
    Column,
    Computed,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable, DefaultClause
from sqlalchemy.sql.elements import conv

from pane.db.migrate import check
from pane.models import Base
from tests.conftest import Servers

Drift = Callable[[MetaData], None]


def _copy() -> MetaData:
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    return metadata


def _drifted(drift: Drift) -> MetaData:
    metadata = _copy()
    drift(metadata)
    return metadata


def _without(table: Table, name: str) -> Table:
    """``table`` with its index or constraint ``name`` taken away."""
    for found in [*table.indexes, *table.constraints]:
        if found.name == name:
            (table.indexes if isinstance(found, Index) else table.constraints).discard(found)
            return table
    raise AssertionError(f"{table.name} has no {name}")


# --------------------------------------------------------------------------------------------
# alembic check


async def test_alembic_check_finds_the_models_and_the_migrations_alike(servers: Servers) -> None:
    assert await check(servers.admin_url) == []


def test_pane_migrate_check_runs_the_same_check(servers: Servers, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PANE_")}
    env |= {
        **servers.env(),
        "PANE_REDIS_URL": servers.redis_url,
        "PANE_DATA_DIR": str(tmp_path),
        "PANE_LOG_LEVEL": "WARNING",
    }
    result = subprocess.run(
        [sys.executable, "-m", "pane", "migrate", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "the models match the migrated database\n"


def _extra_column(metadata: MetaData) -> None:
    metadata.tables["deals"].append_column(Column("drift_probe", Text))


def _other_server_default(metadata: MetaData) -> None:
    metadata.tables["sync_runs"].c.status.server_default = DefaultClause("running")


def _missing_check(metadata: MetaData) -> None:
    _without(metadata.tables["vendor_links"], "vendor_links_status_check")


def _other_generated_expression(metadata: MetaData) -> None:
    column = metadata.tables["price_items"].c.margin
    column.server_default = Computed("list_price + partner_cost", persisted=True)


@pytest.mark.parametrize(
    ("drift", "reported"),
    [
        (_extra_column, "op.add_column('deals', sa.Column('drift_probe'"),
        (_other_server_default, "op.alter_column('sync_runs', 'status'"),
        (_missing_check, "op.drop_constraint(op.f('vendor_links_status_check')"),
        (_other_generated_expression, "price_items.margin"),
    ],
    ids=["extra-column", "server-default", "missing-check", "generated-expression"],
)
async def test_alembic_check_reports_a_drifted_model(
    servers: Servers, drift: Drift, reported: str
) -> None:
    found = await check(servers.admin_url, _drifted(drift))
    assert any(reported in line for line in found), found


# --------------------------------------------------------------------------------------------
# What alembic does not compare, as PostgreSQL renders it

CATALOG = """
SELECT 'column', c.relname, a.attname,
       format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || CASE WHEN a.attgenerated = 's' THEN ' generated ' ELSE ' default ' END
       || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' AND c.relname <> 'alembic_version'
  AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint', c.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE c.relnamespace = $1::regnamespace AND c.relname <> 'alembic_version'
UNION ALL
SELECT 'index', c.relname, i.relname, replace(pg_get_indexdef(i.oid), ' ON ' || $1 || '.', ' ON ')
FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
WHERE c.relnamespace = $1::regnamespace AND c.relname <> 'alembic_version'
"""


def _create_statements(metadata: MetaData) -> list[str]:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statements = []
    for table in metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        statements += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    return statements


async def _catalog(admin_db: asyncpg.Connection, schema: str) -> set[tuple[str, ...]]:
    # Names the search path reaches are not qualified; both schemas see the same path otherwise.
    await admin_db.execute(f"SET LOCAL search_path TO {schema}, public")
    return {tuple(row) for row in await admin_db.fetch(CATALOG, schema)}


async def _differences(admin_db: asyncpg.Connection, metadata: MetaData) -> list[str]:
    """How the tables ``metadata`` creates (in a scratch schema, rolled back) differ from the
    migrated ones: one line per object, its definition on either side."""
    transaction = admin_db.transaction()
    await transaction.start()
    try:
        migrated = await _catalog(admin_db, "public")
        await admin_db.execute("CREATE SCHEMA models_probe")
        await admin_db.execute("SET LOCAL search_path TO models_probe, public")
        for statement in _create_statements(metadata):
            await admin_db.execute(statement)
        created = await _catalog(admin_db, "models_probe")
    finally:
        await transaction.rollback()
    return sorted(
        [f"migrated: {' '.join(row)}" for row in migrated - created]
        + [f"models:   {' '.join(row)}" for row in created - migrated]
    )


async def test_the_models_create_the_tables_the_migrations_create(
    admin_db: asyncpg.Connection,
) -> None:
    assert await _differences(admin_db, Base.metadata) == []


def _other_index_predicate(metadata: MetaData) -> None:
    table = _without(metadata.tables["vendor_links"], "vendor_links_due_idx")
    Index("vendor_links_due_idx", table.c.next_sync_at, postgresql_where=text("status = 'paused'"))


def _other_index_method(metadata: MetaData) -> None:
    table = _without(metadata.tables["vendors"], "vendors_name_trgm_idx")
    Index("vendors_name_trgm_idx", func.lower(table.c.name))


def _other_check(metadata: MetaData) -> None:
    table = _without(metadata.tables["vendor_links"], "vendor_links_sync_interval_seconds_check")
    table.append_constraint(
        CheckConstraint(
            "sync_interval_seconds >= 30", name=conv("vendor_links_sync_interval_seconds_check")
        )
    )


def _other_primary_key(metadata: MetaData) -> None:
    table = metadata.tables["sync_seen"]
    table.c.external_id.primary_key = False
    table.append_constraint(
        PrimaryKeyConstraint("workspace_id", "run_id", "stream", name=conv("sync_seen_pkey"))
    )


@pytest.mark.parametrize(
    ("drift", "name"),
    [
        (_other_index_predicate, "vendor_links_due_idx"),
        (_other_index_method, "vendors_name_trgm_idx"),
        (_other_check, "vendor_links_sync_interval_seconds_check"),
        (_other_primary_key, "sync_seen_pkey"),
    ],
    ids=["index-predicate", "index-method", "check-expression", "primary-key"],
)
async def test_the_table_comparison_reports_what_alembic_does_not(
    servers: Servers, admin_db: asyncpg.Connection, drift: Drift, name: str
) -> None:
    drifted = _drifted(drift)
    assert await check(servers.admin_url, drifted) == []  # alembic does not see it...
    found = await _differences(admin_db, drifted)  # ...PostgreSQL does
    # its definition in the migrations and in the models, nothing else
    assert {tuple(line.split()[0:4:3]) for line in found} == {
        ("migrated:", name),
        ("models:", name),
    }, found
