"""Syncs asked for (through the API, or by the scheduler) and the history of a link's runs.

A sync is a run row in PostgreSQL plus an arq job ``sync:{link_id}`` that carries it out.
The job is only a wake-up call: a job that finds a job id taken still has its run carried out
(the running job takes every pending run before it ends, and the scheduler enqueues any link
with a pending run), so a failed or refused enqueue never loses a sync."""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pane.connectors.records import Stream
from pane.errors import Conflict, NotFound, Unprocessable
from pane.principal import WorkspacePrincipal
from pane.services.audit import record_audit
from pane.services.connectors import link_streams
from pane.services.links import LinkStatus, get_link
from pane.services.pagination import Page, decode_cursor, encode_cursor

log = structlog.get_logger("pane.sync")

SYNC_QUEUE = "pane:queue"

RUN_COLUMNS = (
    "id, link_id, trigger, streams, full_resync, status, queued_at, started_at, finished_at,"
    " fetched, created, updated, unchanged, deleted, failed, failures, error"
)

_PENDING = text(
    f"SELECT {RUN_COLUMNS} FROM sync_runs"  # noqa: S608 - fixed column names
    " WHERE workspace_id = :workspace_id AND link_id = :link_id AND status = 'queued'"
    " AND full_resync = :full_resync AND streams = :streams ORDER BY id LIMIT 1"
)
_CREATE = text(
    "INSERT INTO sync_runs (workspace_id, id, link_id, trigger, streams, full_resync)"  # noqa: S608
    " VALUES (:workspace_id, pane_uuid7(), :link_id, :trigger, :streams, :full_resync)"
    f" RETURNING {RUN_COLUMNS}"
)


async def request_sync(
    session: AsyncSession,
    *,
    actor: WorkspacePrincipal,
    link_id: uuid.UUID,
    streams: list[Stream] | None,
    full_resync: bool,
) -> dict[str, Any]:
    """A queued run for the link (the same one again while an identical request still waits).
    The caller enqueues the job (``enqueue_requested``) once this transaction has committed."""
    link = await get_link(session, principal=actor, link_id=link_id, for_update=True)
    if link.status == LinkStatus.PAUSED:
        raise Conflict("this link is paused; resume it before syncing")
    if link.status == LinkStatus.NEEDS_REAUTH:
        raise Conflict("the vendor rejected this link's credentials; update them before syncing")
    readable = link_streams(link.connector, link.config)
    wanted = sorted({stream.value for stream in streams}) if streams else readable
    unreadable = sorted(set(wanted) - set(readable))
    if unreadable:
        raise Unprocessable(
            f"{link.connector} does not read {', '.join(unreadable)}"
            f" (it reads: {', '.join(readable) or 'nothing'})",
            errors=[{"field": "body.streams", "message": "stream not read by this connector"}],
        )
    values = {
        "workspace_id": actor.workspace_id,
        "link_id": link.id,
        "streams": wanted,
        "full_resync": full_resync,
    }
    waiting = (await session.execute(_PENDING, values)).mappings().first()
    if waiting is not None:
        return dict(waiting)
    trigger = "full_resync" if full_resync else "manual"
    run = dict((await session.execute(_CREATE, {**values, "trigger": trigger})).mappings().one())
    await record_audit(
        session,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action="link.sync_requested",
        target_type="link",
        target_id=link.id,
        details={"run_id": str(run["id"]), "streams": wanted, "full_resync": full_resync},
    )
    return run


async def list_runs(
    session: AsyncSession,
    *,
    actor: WorkspacePrincipal,
    link_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> Page:
    """Newest first."""
    await get_link(session, principal=actor, link_id=link_id)
    clauses = ["workspace_id = :workspace_id", "link_id = :link_id"]
    values: dict[str, Any] = {
        "workspace_id": actor.workspace_id,
        "link_id": link_id,
        "limit": limit + 1,
    }
    if cursor:
        (values["after"],) = decode_cursor("runs", cursor, (uuid.UUID,))
        clauses.append("id < :after")
    rows = (
        await session.execute(
            text(
                f"SELECT {RUN_COLUMNS} FROM sync_runs WHERE {' AND '.join(clauses)}"  # noqa: S608
                " ORDER BY id DESC LIMIT :limit"
            ),
            values,
        )
    ).mappings()
    items = [dict(row) for row in rows]
    next_cursor = None
    if len(items) > limit:
        items = items[:limit]
        next_cursor = encode_cursor("runs", [items[-1]["id"]])
    return Page(items=items, next_cursor=next_cursor)


async def get_run(
    session: AsyncSession, *, actor: WorkspacePrincipal, link_id: uuid.UUID, run_id: uuid.UUID
) -> dict[str, Any]:
    await get_link(session, principal=actor, link_id=link_id)
    row = (
        (
            await session.execute(
                text(
                    f"SELECT {RUN_COLUMNS} FROM sync_runs"  # noqa: S608 - fixed column names
                    " WHERE workspace_id = :workspace_id AND link_id = :link_id AND id = :run_id"
                ),
                {"workspace_id": actor.workspace_id, "link_id": link_id, "run_id": run_id},
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no run {run_id} of link {link_id}")
    return dict(row)


def sync_job_id(link_id: uuid.UUID | str) -> str:
    return f"sync:{link_id}"


async def enqueue_sync(
    redis: ArqRedis,
    *,
    workspace_id: uuid.UUID,
    link_id: uuid.UUID,
    trigger: str,
    run_id: uuid.UUID | None = None,
) -> bool:
    """Wake a worker for the link; False when its job is already queued or running (that job
    then also carries out this request: it takes every pending run before it ends)."""
    job = await redis.enqueue_job(
        "sync_link",
        str(link_id),
        workspace_id=str(workspace_id),
        trigger=trigger,
        run_id=str(run_id) if run_id else None,
        _job_id=sync_job_id(link_id),
        _queue_name=SYNC_QUEUE,
    )
    return job is not None


async def enqueue_requested(
    redis: ArqRedis, *, workspace_id: uuid.UUID, link_id: uuid.UUID, run_id: uuid.UUID
) -> None:
    """After the run has committed. With Redis down the run stays queued, and the scheduler
    finds it within a minute of Redis coming back."""
    try:
        await enqueue_sync(
            redis, workspace_id=workspace_id, link_id=link_id, trigger="manual", run_id=run_id
        )
    except (OSError, RedisError) as exc:
        log.warning("sync queued but not enqueued", link_id=str(link_id), error=str(exc))
