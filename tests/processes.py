"""Real pane processes for the tests that need one: a worker, waiting on what it does."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

from tests.conftest import CREDENTIAL_KEY, Servers


def start_worker(servers: Servers, redis_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PANE_DATABASE_URL": servers.app_url,
        "PANE_MIGRATION_DATABASE_URL": servers.admin_url,
        "PANE_REDIS_URL": redis_url,
        "PANE_DATA_DIR": str(servers.data_dir / "worker"),
        "PANE_CREDENTIAL_KEYS": CREDENTIAL_KEY,
        "PANE_TOKEN_SIGNING_KEY": "test-signing-key-" + "x" * 32,
        "PANE_ALLOW_PRIVATE_VENDOR_URLS": "true",
        "PANE_WORKER_SCHEDULE": "false",
        "PANE_SYNC_JOB_TIMEOUT_SECONDS": "10",
        "PANE_SYNC_LEASE_SECONDS": "5",
        "PANE_SYNC_RETRY_INITIAL_WAIT": "0.01",
        "PANE_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "pane", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for(predicate, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
