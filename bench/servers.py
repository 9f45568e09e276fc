"""What the benchmarks share: the servers they run against and the URLs they derive."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from pane.db.embedded import EmbeddedServers
from pane.db.migrate import upgrade


def database_url(base: str, *, user: str, database: str) -> str:
    return (
        make_url(base)
        .set(drivername="postgresql", username=user, password=None, database=database)
        .render_as_string(hide_password=False)
    )


def server_user(url: str) -> str:
    return make_url(url).username or "postgres"


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def bench_servers(database: str) -> Iterator[tuple[str, str]]:
    """(PostgreSQL superuser URL, Redis URL): PANE_BENCH_DATABASE_URL and PANE_BENCH_REDIS_URL,
    or embedded servers kept under ~/.cache/pane-bench for what is not set."""
    admin_server = os.environ.get("PANE_BENCH_DATABASE_URL")
    redis_url = os.environ.get("PANE_BENCH_REDIS_URL")
    embedded = None
    if admin_server is None or redis_url is None:
        embedded = EmbeddedServers(Path.home() / ".cache" / "pane-bench", database=database)
        if admin_server is None:
            embedded.start_postgres()
            admin_server = embedded.admin_url
        if redis_url is None:
            embedded.start_redis()
            redis_url = embedded.redis_url
    try:
        yield admin_server, redis_url
    finally:
        if embedded is not None:
            embedded.stop()


async def fresh_database(admin_server: str, database: str) -> str:
    """Drop and create a benchmark database, migrate it; return its owner URL."""
    connection = await asyncpg.connect(
        database_url(admin_server, user=server_user(admin_server), database="postgres")
    )
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    owner_url = database_url(admin_server, user=server_user(admin_server), database=database)
    await upgrade(owner_url)
    return owner_url


async def ensure_database(admin_server: str, name: str) -> None:
    """Create the benchmark's database on the server unless it is there (kept between runs)."""
    connection = await asyncpg.connect(
        database_url(admin_server, user=server_user(admin_server), database="postgres")
    )
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
