"""Alembic environment: migrations run over asyncpg as the schema owner.

``pane migrate`` hands over an open connection in ``config.attributes["connection"]`` (the
alembic cookbook's pattern for async engines); a check may hand over other metadata to compare
in ``config.attributes["target_metadata"]``. Run by hand, alembic reads
``PANE_MIGRATION_DATABASE_URL`` or ``PANE_DATABASE_URL``.

``alembic check`` compares tables, columns (types, nullability, server defaults), unique and
foreign keys, indexes (columns and expressions) and CHECK constraints (by name). What it does not
compare is held by tests instead: index methods, operator classes and predicates, CHECK text
and primary keys in ``tests/test_models_schema.py``; row-level security, grants and functions,
which no model declares, in ``tests/test_isolation_catalog.py``. Nothing needs excluding.
"""

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from pane.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=context.config.attributes.get("target_metadata", Base.metadata),
        transaction_per_migration=True,
        compare_server_default=True,
        # CHECK constraints are compared by name (their text is not compared by alembic).
        autogenerate_plugins=["alembic.autogenerate.*", "alembic.ext.checkconstraint_byname"],
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_environment() -> None:
    url = os.environ.get("PANE_MIGRATION_DATABASE_URL") or os.environ.get("PANE_DATABASE_URL")
    if not url:
        raise RuntimeError("set PANE_MIGRATION_DATABASE_URL, or run `pane migrate`")
    engine = create_async_engine(make_url(url).set(drivername="postgresql+asyncpg"))
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


given = context.config.attributes.get("connection")
if given is not None:
    _run(given)
else:
    asyncio.run(_run_from_environment())
