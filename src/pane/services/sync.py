"""Syncs asked for (through the API, or by the scheduler) and the history of a link's runs.

A sync is a run row in PostgreSQL plus an arq job ``sync:{link_id}`` that carries it out. The
job is only a wake-up call, asked for through the outbox in the run's own transaction: a job
that finds its id taken still has its run carried out (the running job takes every pending run
before it ends, and the scheduler enqueues any link with a pending run), so a failed or refused
enqueue never loses a sync."""

from __future__ import annotations

import uuid
from typing import Any

from arq.connections import ArqRedis

from pane.catalogue import EventType, SyncRunState
from pane.connectors.records import Stream
from pane.connectors.registry import link_streams
from pane.db.database import Transaction
from pane.errors import Conflict, Invalid, NotFound
from pane.models.vendor import LinkStatus
from pane.principal import WorkspacePrincipal
from pane.services import events, outbox
from pane.services.audit import record_audit
from pane.services.events import NewEvent
from pane.services.links import get_link
from pane.services.lists import BY_ID, ListQuery, Page

SYNC_QUEUE = outbox.QUEUE
SYNC_JOB = "sync_link"

RUN_COLUMNS = (
    "id, link_id, trigger, streams, full_resync, status, queued_at, started_at, finished_at,"
    " fetched, created, updated, unchanged, deleted, failed, failures, error"
)

_PENDING = (
    f"SELECT {RUN_COLUMNS} FROM sync_runs"  # noqa: S608 - fixed column names
    " WHERE workspace_id = $1 AND link_id = $2 AND status = 'queued'"
    " AND full_resync = $3 AND streams = $4 ORDER BY id LIMIT 1"
)
_CREATE = (
    "INSERT INTO sync_runs (workspace_id, id, link_id, trigger, streams, full_resync)"  # noqa: S608
    " VALUES ($1, pane_uuid7(), $2, $3, $4, $5)"
    f" RETURNING {RUN_COLUMNS}"
)


def sync_job_id(link_id: uuid.UUID | str) -> str:
    return f"sync:{link_id}"


def sync_job_kwargs(
    *, workspace_id: uuid.UUID, link_id: uuid.UUID, trigger: str, run_id: uuid.UUID | None
) -> dict[str, Any]:
    return {
        "link_id": str(link_id),
        "workspace_id": str(workspace_id),
        "trigger": trigger,
        "run_id": str(run_id) if run_id else None,
    }


async def queued_run_event(
    tx: Transaction,
    *,
    workspace_id: uuid.UUID,
    vendor_id: uuid.UUID,
    actor: tuple[str, uuid.UUID | None],
    run: dict[str, Any],
) -> None:
    state = SyncRunState(
        link_id=run["link_id"],
        trigger=run["trigger"],
        streams=list(run["streams"]),
        full_resync=run["full_resync"],
    )
    await events.record(
        tx,
        workspace_id=workspace_id,
        actor=actor,
        events=[NewEvent(EventType.SYNC_RUN_QUEUED, run["id"], state, vendor_id=vendor_id)],
    )


async def request_sync(
    tx: Transaction,
    *,
    actor: WorkspacePrincipal,
    link_id: uuid.UUID,
    streams: list[Stream] | None,
    full_resync: bool,
) -> dict[str, Any]:
    """A queued run for the link (the same one again while an identical request still waits),
    and its job asked for through the outbox."""
    link = await get_link(tx, principal=actor, link_id=link_id, for_update=True)
    if link.status == LinkStatus.PAUSED:
        raise Conflict("this link is paused; resume it before syncing")
    if link.status == LinkStatus.NEEDS_REAUTH:
        raise Conflict("the vendor rejected this link's credentials; update them before syncing")
    readable = link_streams(link.connector, link.config)
    wanted = sorted({stream.value for stream in streams}) if streams else readable
    unreadable = sorted(set(wanted) - set(readable))
    if unreadable:
        raise Invalid(
            f"{link.connector} does not read {', '.join(unreadable)}"
            f" (it reads: {', '.join(readable) or 'nothing'})",
            errors=[{"field": "body.streams", "message": "stream not read by this connector"}],
        )
    waiting = await tx.connection.fetchrow(
        _PENDING, actor.workspace_id, link.id, full_resync, wanted
    )
    if waiting is not None:
        return dict(waiting)
    trigger = "full_resync" if full_resync else "manual"
    run = dict(
        await tx.connection.fetchrow(
            _CREATE, actor.workspace_id, link.id, trigger, wanted, full_resync
        )
    )
    await queued_run_event(
        tx, workspace_id=actor.workspace_id, vendor_id=link.vendor_id, actor=actor.actor, run=run
    )
    await record_audit(
        tx,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action="link.sync_requested",
        target_type="link",
        target_id=link.id,
        details={"run_id": str(run["id"]), "streams": wanted, "full_resync": full_resync},
    )
    await outbox.add(
        tx,
        workspace_id=actor.workspace_id,
        job=SYNC_JOB,
        job_id=sync_job_id(link.id),
        kwargs=sync_job_kwargs(
            workspace_id=actor.workspace_id, link_id=link.id, trigger="manual", run_id=run["id"]
        ),
    )
    return run


async def list_runs(
    tx: Transaction,
    *,
    actor: WorkspacePrincipal,
    link_id: uuid.UUID,
    cursor: str | None,
    limit: int,
) -> Page:
    """Newest first."""
    await get_link(tx, principal=actor, link_id=link_id)
    query = ListQuery(
        kind="runs", source="sync_runs", columns=RUN_COLUMNS, order=BY_ID, descending=True
    )
    query.within("workspace_id", actor.workspace_id).equals("link_id", link_id)
    return await query.page(tx, cursor=cursor, limit=limit)


async def get_run(
    tx: Transaction, *, actor: WorkspacePrincipal, link_id: uuid.UUID, run_id: uuid.UUID
) -> dict[str, Any]:
    await get_link(tx, principal=actor, link_id=link_id)
    row = await tx.connection.fetchrow(
        f"SELECT {RUN_COLUMNS} FROM sync_runs"  # noqa: S608 - fixed column names
        " WHERE workspace_id = $1 AND link_id = $2 AND id = $3",
        actor.workspace_id,
        link_id,
        run_id,
    )
    if row is None:
        raise NotFound(f"no run {run_id} of link {link_id}")
    return dict(row)


async def enqueue_sync(
    redis: ArqRedis,
    *,
    workspace_id: uuid.UUID,
    link_id: uuid.UUID,
    trigger: str,
    run_id: uuid.UUID | None = None,
) -> bool:
    """Wake a worker for the link now (the scheduler: nothing to commit first); False when
    its job is already queued or running (that job then also carries out this request: it
    takes every pending run before it ends)."""
    job = await redis.enqueue_job(
        SYNC_JOB,
        _job_id=sync_job_id(link_id),
        _queue_name=SYNC_QUEUE,
        **sync_job_kwargs(
            workspace_id=workspace_id, link_id=link_id, trigger=trigger, run_id=run_id
        ),
    )
    return job is not None
