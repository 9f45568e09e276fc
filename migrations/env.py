"""Alembic environment: migrations run over asyncpg as the schema owner.

``pane migrate`` hands over an open connection in ``config.attributes["connection"]`` (the
alembic cookbook's pattern for async engines). Run by hand, alembic reads
``PANE_MIGRATION_DATABASE_URL`` or ``PANE_DATABASE_URL``.
"""

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine

from pane.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection, target_metadata=target_metadata, transaction_per_migration=True
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
