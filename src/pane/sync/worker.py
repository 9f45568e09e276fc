"""The arq worker: shared clients live in ``ctx``; jobs take ids and open their own
transactions.

arq runs a job at least once: a job whose worker died comes back when its in-progress key
expires (``sync_job_timeout_seconds`` + 10 s after it started), and a job id is refused while
a job or a kept result holds it. So results are not kept (a link's job id ``sync:{link_id}``
is free again as soon as its job ends) and the engine's per-link lease, not arq, is what keeps
one link from syncing twice at once.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import sqlalchemy.exc
import structlog
from arq import Retry, cron, func
from arq.connections import RedisSettings
from arq.worker import Worker

from pane.config import Settings
from pane.connectors.registry import connectors
from pane.db.database import Database
from pane.db.safety import assert_runtime_role_is_safe
from pane.errors import OUTAGES
from pane.heap import freeze_startup_objects
from pane.secrets import load_key_ring
from pane.services import changes, outbox, webhooks
from pane.services.auth import purge_expired_refresh_tokens
from pane.services.commits import follow_ups
from pane.services.sync import SYNC_QUEUE, enqueue_sync
from pane.sync import inbox, runs
from pane.sync.engine import SyncDeps
from pane.sync.engine import sync_link as run_sync

log = structlog.get_logger("pane.worker")

DUE_LINKS_PER_TICK = 500
# Failures that pass: the job is run again a little later. Besides an outage, every pooled
# connection busy, or a deadlock with a sync writing the same rows.
TRANSIENT = (
    *OUTAGES,
    sqlalchemy.exc.TimeoutError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
)
RELAY_EVERY_SECONDS = 5


async def sync_link(
    ctx: dict[str, Any],
    *,
    link_id: str,
    workspace_id: str,
    trigger: str = "schedule",
    streams: list[str] | None = None,
    run_id: str | None = None,
) -> list[str]:
    results = await run_sync(
        ctx["sync"],
        workspace_id=uuid.UUID(workspace_id),
        link_id=uuid.UUID(link_id),
        streams=streams,
        trigger=trigger,
        run_id=uuid.UUID(run_id) if run_id else None,
    )
    return [result.status for result in results]


async def apply_webhook(ctx: dict[str, Any], *, workspace_id: str, delivery_id: str) -> str:
    """A stored webhook delivery, applied (``pane.sync.inbox``). A database that is away or
    busy, or a deadlock with a sync writing the same rows, is tried again with backoff."""
    try:
        applied = await inbox.apply_delivery(
            ctx["sync"].database,
            workspace_id=uuid.UUID(workspace_id),
            delivery_id=uuid.UUID(delivery_id),
        )
    except TRANSIENT as exc:
        tries = int(ctx.get("job_try", 1))
        log.warning("webhook not applied yet", delivery_id=delivery_id, error=str(exc), tries=tries)
        raise Retry(defer=min(2**tries, 60)) from exc
    return "gone" if applied is None else applied.status


async def requeue_stranded_webhooks(ctx: dict[str, Any]) -> int:
    """Every minute: deliveries left unapplied (their job ran out of tries while the database
    was away), asked for again."""
    asked = await webhooks.requeue_stranded(ctx["sync"].database)
    if asked:
        log.info("asked again for webhook deliveries left unapplied", count=asked)
    return asked


async def enqueue_due_links(ctx: dict[str, Any]) -> int:
    """Every minute: a job for each active link whose interval has passed, or whose sync was
    asked for and not yet carried out (a request that arrived as its previous job ended)."""
    deps: SyncDeps = ctx["sync"]
    async with deps.database.transaction() as tx:
        due = await runs.due_links(tx, DUE_LINKS_PER_TICK)
    enqueued = 0
    for row in due:
        enqueued += await enqueue_sync(
            ctx["redis"],
            workspace_id=row["workspace_id"],
            link_id=row["link_id"],
            trigger="schedule",
        )
    if due:
        log.info("enqueued due links", due=len(due), enqueued=enqueued)
    return enqueued


async def relay_outbox(ctx: dict[str, Any]) -> int:
    """Every few seconds: jobs asked for in a committed transaction whose own process did not
    enqueue them (it died, or Redis was away)."""
    deps: SyncDeps = ctx["sync"]
    return await outbox.relay_pending(deps.database, ctx["redis"])


async def purge_old_events(ctx: dict[str, Any]) -> int:
    """Daily: events older than the retention setting go (the change feed answers 410 for a
    position before them)."""
    deps: SyncDeps = ctx["sync"]
    purged = await changes.purge_expired(
        deps.database, retention_days=deps.settings.change_retention_days
    )
    log.info("purged old events", count=purged)
    return purged


async def purge_refresh_tokens(ctx: dict[str, Any]) -> int:
    """Drop refresh tokens a day past expiry; reuse detection needs none older than that."""
    deps: SyncDeps = ctx["sync"]
    async with deps.database.transaction(orm=True) as tx:
        purged = await purge_expired_refresh_tokens(tx)
    log.info("purged expired refresh tokens", count=purged)
    return purged


def build_worker(settings: Settings, *, handle_signals: bool = True) -> Worker:
    assert settings.database_url
    assert settings.redis_url

    async def startup(ctx: dict[str, Any]) -> None:
        connectors()  # refuse to run with a connector plugin that does not load
        database = Database(
            settings.database_url or "",
            pool_size=settings.worker_db_pool_size,
            transaction_pooler=settings.database_transaction_pooler,
        )
        ctx["database"] = database
        database.after_commit = follow_ups(database, ctx["redis"])
        await assert_runtime_role_is_safe(database)
        ctx["sync"] = SyncDeps(
            database=database,
            redis=ctx["redis"],
            settings=settings,
            keyring=load_key_ring(settings),
        )
        if settings.freeze_startup_objects:
            freeze_startup_objects()

    async def shutdown(ctx: dict[str, Any]) -> None:
        database = ctx.get("database")
        if database is not None:
            await database.dispose()

    return Worker(
        functions=[
            func(sync_link, name="sync_link", timeout=settings.sync_job_timeout_seconds),
            func(apply_webhook, name="apply_webhook", max_tries=8),
            enqueue_due_links,
            purge_refresh_tokens,
            relay_outbox,
            purge_old_events,
            requeue_stranded_webhooks,
        ],
        cron_jobs=[
            cron(purge_refresh_tokens, hour={3}, minute={17}, run_at_startup=False),
            cron(purge_old_events, hour={3}, minute={27}, run_at_startup=False),
            cron(relay_outbox, second=set(range(0, 60, RELAY_EVERY_SECONDS)), run_at_startup=True),
            cron(requeue_stranded_webhooks, second={30}, run_at_startup=False),
            *(
                [cron(enqueue_due_links, second={0}, run_at_startup=True)]
                if settings.worker_schedule
                else []
            ),
        ],
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=handle_signals,
        queue_name=SYNC_QUEUE,
        health_check_key="pane:worker:health",
        keep_result=0,
        # arq expires a dead worker's in-progress keys after the longest job timeout + 10 s
        job_timeout=settings.sync_job_timeout_seconds,
        max_jobs=settings.worker_max_jobs,
    )


async def stop_in_process(worker: Worker, running: asyncio.Task[None]) -> None:
    """Stop a worker that runs inside another command (``pane``, ``pane demo``): its polling
    loop, then its jobs (a sync cut short is taken over from its last committed page once its
    lease lapses), then its connections.

    arq's ``close()`` cancels the running jobs and then waits for them with a plain
    ``gather``: a job that ends cancelled (one stopped in the middle of a sync) would come out
    of it as this task's own cancellation, skip the rest of the shutdown and end the command
    with a traceback. So the jobs are cancelled and awaited here first."""
    running.cancel()
    jobs = list(worker.tasks.values())
    for job in jobs:
        job.cancel()
    await asyncio.gather(running, *jobs, return_exceptions=True)
    worker.tasks.clear()
    await worker.close()
