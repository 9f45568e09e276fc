from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine


def asyncpg_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and point them at the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return _create_async_engine(
        asyncpg_url(url),
        # A fixed pool: overflow connections would be opened and closed on every burst.
        pool_size=pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"server_settings": {"application_name": "pane"}},
    )


def plain_url(url: str) -> str:
    """The URL as libpq and asyncpg spell it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _reset_by_borrower(connection: asyncpg.Connection) -> None:
    """The read path ends its transaction and resets the session in one statement before it
    gives the connection back (pane.db.tenant.end_reading); asyncpg still rolls back any
    transaction left open. pane sets no session-level state, so nothing else is left over."""


async def create_pool(url: str, *, size: int, min_size: int = 1) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        plain_url(url),
        min_size=min(min_size, size),
        max_size=size,
        server_settings={"application_name": "pane"},
        reset=_reset_by_borrower,
    )
    assert pool is not None
    return pool


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def driver_connection(bind: AsyncSession | AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a session's transaction, for hot paths that skip
    SQLAlchemy's statement pipeline (tenant scoping, list reads serialized straight to JSON).

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its first statement; raw statements
    issued before that would run outside the transaction and lose transaction-local settings.
    So the transaction is started here if the adapter has not started it yet.
    """
    connection = await bind.connection() if isinstance(bind, AsyncSession) else bind
    raw = await connection.get_raw_connection()
    adapter: Any = raw.dbapi_connection
    if adapter._transaction is None:
        async with adapter._execute_mutex:
            if adapter._transaction is None:
                await adapter._start_transaction()
    driver = raw.driver_connection
    assert isinstance(driver, asyncpg.Connection)
    return driver
