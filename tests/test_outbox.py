"""The transactional outbox: a job asked for in a transaction is written with it, relayed
after the commit, kept when Redis is away, and delivered by the worker when the process that
committed died before it could enqueue."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid

from arq.connections import ArqRedis

from pane.services import outbox
from tests.conftest import CREDENTIAL_KEY, Servers, running_app
from tests.factories import other_redis_db
from tests.processes import start_worker, wait_for


async def _outbox(admin_db, workspace_id: uuid.UUID) -> list[dict[str, object]]:
    rows = await admin_db.fetch(
        "SELECT job, job_id, kwargs, attempts, last_error FROM outbox WHERE workspace_id = $1",
        workspace_id,
    )
    return [dict(row) for row in rows]


async def test_a_job_is_asked_for_in_the_commit_and_relayed_right_after(api, http, admin_db, redis):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    started = await http.post(f"/v1/links/{link['id']}/sync", headers=owner.headers)
    assert started.status_code == 202, started.text
    assert await redis.exists(f"arq:job:sync:{link['id']}")
    assert await _outbox(admin_db, owner.workspace_id) == []


async def test_with_redis_away_the_job_waits_in_the_outbox_for_the_relay(
    servers: Servers, api, admin_db, sync_deps
):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    async with running_app(servers, redis_url="redis://127.0.0.1:1/0") as (_, client):
        started = await client.post(f"/v1/links/{link['id']}/sync", headers=owner.headers)
    assert started.status_code == 202, started.text
    [waiting] = await _outbox(admin_db, owner.workspace_id)
    assert waiting["job"] == "sync_link"
    assert waiting["job_id"] == f"sync:{link['id']}"
    assert waiting["attempts"] == 1
    assert "Error" in str(waiting["last_error"])

    redis = ArqRedis.from_url(other_redis_db(servers.redis_url, 6))
    try:
        await redis.flushdb()
        delivered = await outbox.relay_pending(sync_deps.database, redis, older_than_seconds=0)
        assert delivered >= 1
        assert await redis.exists(f"arq:job:sync:{link['id']}")
    finally:
        await redis.aclose()
    assert await _outbox(admin_db, owner.workspace_id) == []


async def test_a_process_killed_between_commit_and_enqueue_loses_no_job(
    servers: Servers, api, admin_db
):
    """A real process commits a sync request and is SIGKILLed before it enqueues the job; a
    worker started afterwards relays the outbox and carries the sync out."""
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    redis_url = other_redis_db(servers.redis_url, 7)
    env = {
        **os.environ,
        **servers.env(),
        "PANE_REDIS_URL": redis_url,
        "PANE_DATA_DIR": str(servers.data_dir / "crash"),
        "PANE_CREDENTIAL_KEYS": CREDENTIAL_KEY,
        "PANE_TOKEN_SIGNING_KEY": "test-signing-key-" + "x" * 32,
        "PANE_ALLOW_PRIVATE_VENDOR_URLS": "true",
        "PANE_LOG_LEVEL": "WARNING",
    }
    redis = ArqRedis.from_url(redis_url)
    await redis.flushdb()
    crashed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.outbox_crash",
        link["id"],
        owner.access_token,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(crashed.communicate(), 60)
    assert crashed.returncode == -signal.SIGKILL, stderr.decode()
    run = await admin_db.fetchrow(
        "SELECT id, status FROM sync_runs WHERE workspace_id = $1", owner.workspace_id
    )
    assert run["status"] == "queued", "the run committed"
    assert [row["job_id"] for row in await _outbox(admin_db, owner.workspace_id)] == [
        f"sync:{link['id']}"
    ]
    assert not await redis.exists(f"arq:job:sync:{link['id']}"), "and no job was enqueued"

    worker = start_worker(servers, redis_url)
    try:

        async def carried_out() -> bool:
            status = await admin_db.fetchval(
                "SELECT status FROM sync_runs WHERE id = $1", run["id"]
            )
            return status == "succeeded"

        await wait_for(carried_out, 60, "the worker to relay the job and sync")
    finally:
        worker.terminate()
        worker.wait(10)
        await redis.aclose()
    assert await _outbox(admin_db, owner.workspace_id) == []
