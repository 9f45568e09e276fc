"""Run and lease bookkeeping for the sync engine, in SQL on asyncpg. Every statement runs in a
transaction scoped to the link's workspace (``workspace_scope``), under the same row-level
security as a request; the only cross-workspace read is ``pane_due_links()`` (the scheduler)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from pane.catalogue import (
    EventType,
    LinkNeedsReauth,
    Payload,
    SyncRunFinished,
    SyncRunProgress,
    SyncRunState,
)
from pane.connectors.records import Stream
from pane.connectors.registry import link_streams
from pane.db.database import Transaction
from pane.services import events
from pane.services.events import NewEvent
from pane.sync.upsert import Written

MAX_STORED_FAILURES = 200
MAX_BACKOFF_SECONDS = 6 * 3600


class LeaseLost(Exception):
    """Another worker holds the link now, or it was paused or deleted: stop without writing.
    A paused link's run stays pending and carries on when the link is resumed."""


@dataclass
class Claim:
    """A run this worker holds the link's lease for, with everything needed to carry it out."""

    workspace_id: uuid.UUID
    link_id: uuid.UUID
    run_id: uuid.UUID
    trigger: str
    owner: uuid.UUID
    vendor_id: uuid.UUID
    vendor_name: str
    connector: str
    config: dict[str, Any]
    sealed_credentials: str | None
    streams: list[Stream]
    full_resync: bool
    # a full resync of a link that has synced before ends with the sweep for tombstones; the
    # first load of a link reads everything too, but has nothing of its own to sweep
    sweep: bool
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    cursors: dict[str, str | None] = field(default_factory=dict)


_LINK = """
SELECT l.status, l.connector, l.config, l.credentials_encrypted, l.vendor_id, v.name AS vendor,
       l.last_full_sync_at IS NULL
         OR l.last_full_sync_at + l.full_resync_interval_seconds * interval '1 second' <= now()
         AS full_resync_due,
       l.last_synced_at IS NOT NULL AS synced_before,
       coalesce(l.sync_lease_until > now(), false) AS leased
FROM vendor_links l JOIN vendors v ON v.id = l.vendor_id
WHERE l.workspace_id = $1 AND l.id = $2
FOR UPDATE OF l
"""

_PENDING_RUN = """
SELECT id, trigger, streams, full_resync, progress FROM sync_runs
WHERE workspace_id = $1 AND link_id = $2 AND status IN ('queued', 'running')
ORDER BY id = $3 DESC, id
LIMIT 1
"""

_NEW_RUN = """
INSERT INTO sync_runs (workspace_id, id, link_id, trigger, streams, full_resync)
VALUES ($1, pane_uuid7(), $2, $3, $4, $5)
RETURNING id, trigger, streams, full_resync, progress
"""


async def create_run(
    connection: asyncpg.Connection,
    *,
    workspace_id: uuid.UUID,
    link_id: uuid.UUID,
    streams: list[str],
    trigger: str,
    full_resync: bool = False,
) -> asyncpg.Record:
    return await connection.fetchrow(
        _NEW_RUN,
        workspace_id,
        link_id,
        trigger,
        streams,
        full_resync or trigger == "full_resync",
    )


async def claim(
    tx: Transaction,
    *,
    workspace_id: uuid.UUID,
    link_id: uuid.UUID,
    run_id: uuid.UUID | None,
    streams: list[str] | None,
    trigger: str,
    lease_seconds: int,
) -> Claim | None:
    """Take the link's lease and the run to carry out (the one asked for, the oldest pending
    one, or a new one). None when the link is gone, not active, or leased by another worker."""
    connection = tx.connection
    link = await connection.fetchrow(_LINK, workspace_id, link_id)
    if link is None or link["status"] != "active" or link["leased"]:
        return None
    run = await connection.fetchrow(_PENDING_RUN, workspace_id, link_id, run_id)
    if run is None:
        run = await create_run(
            connection,
            workspace_id=workspace_id,
            link_id=link_id,
            streams=streams or link_streams(link["connector"], _json(link["config"])),
            trigger=trigger,
        )
        await _event(
            tx,
            workspace_id,
            link_id,
            link["vendor_id"],
            run["id"],
            EventType.SYNC_RUN_QUEUED,
            _state(link_id, run, bool(run["full_resync"])),
        )
    full_resync = bool(run["full_resync"] or link["full_resync_due"])
    await _event(
        tx,
        workspace_id,
        link_id,
        link["vendor_id"],
        run["id"],
        EventType.SYNC_RUN_STARTED,
        _state(link_id, run, full_resync),
    )
    owner = uuid.uuid4()
    await connection.execute(
        "UPDATE sync_runs SET status = 'running', started_at = coalesce(started_at, now()),"
        " full_resync = $3 WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        run["id"],
        full_resync,
    )
    await connection.execute(
        "UPDATE vendor_links SET sync_lease_owner = $3,"
        " sync_lease_until = now() + $4 * interval '1 second'"
        " WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        link_id,
        owner,
        lease_seconds,
    )
    cursors = await connection.fetch(
        "SELECT stream, cursor FROM sync_cursors WHERE workspace_id = $1 AND link_id = $2",
        workspace_id,
        link_id,
    )
    return Claim(
        workspace_id=workspace_id,
        link_id=link_id,
        run_id=run["id"],
        trigger=run["trigger"],
        owner=owner,
        vendor_id=link["vendor_id"],
        vendor_name=link["vendor"],
        connector=link["connector"],
        config=_json(link["config"]),
        sealed_credentials=link["credentials_encrypted"],
        streams=[Stream(name) for name in run["streams"] if name in Stream.__members__.values()],
        full_resync=full_resync,
        sweep=full_resync and bool(link["synced_before"]),
        progress=_json(run["progress"]),
        cursors={row["stream"]: row["cursor"] for row in cursors},
    )


def _state(link_id: uuid.UUID, run: asyncpg.Record, full_resync: bool) -> SyncRunState:
    return SyncRunState(
        link_id=link_id,
        trigger=run["trigger"],
        streams=list(run["streams"]),
        full_resync=full_resync,
    )


async def _event(
    tx: Transaction,
    workspace_id: uuid.UUID,
    link_id: uuid.UUID,
    vendor_id: uuid.UUID,
    entity_id: uuid.UUID,
    event: EventType,
    data: Payload,
) -> None:
    """A run's (or its link's) event, made by the link's connector."""
    await events.record(
        tx,
        workspace_id=workspace_id,
        actor=("connector", link_id),
        events=[NewEvent(event, entity_id, data, vendor_id=vendor_id)],
    )


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


async def renew_lease(tx: Transaction, claim: Claim, lease_seconds: int) -> None:
    held = await tx.connection.fetchval(
        "UPDATE vendor_links SET sync_lease_until = now() + $4 * interval '1 second'"
        " WHERE workspace_id = $1 AND id = $2 AND sync_lease_owner = $3 AND status = 'active'"
        " RETURNING true",
        claim.workspace_id,
        claim.link_id,
        claim.owner,
        lease_seconds,
    )
    if not held:
        raise LeaseLost(f"link {claim.link_id} is no longer leased to this worker")


_COUNTS = ("fetched", "created", "updated", "unchanged", "deleted", "failed")


async def record_page(
    tx: Transaction,
    claim: Claim,
    *,
    stream: Stream,
    written: Written,
    fetched: int,
    failures: list[dict[str, Any]],
    cursor: str | None,
    done: bool = False,
) -> None:
    """The run's counts, failures and progress, and the link's cursor for the stream."""
    connection = tx.connection
    state = claim.progress.setdefault(stream.value, {})
    state["seen"] = int(state.get("seen", 0)) + fetched - len(failures)
    state["done"] = done
    if cursor is not None:
        state["cursor"] = cursor
        await connection.execute(
            "INSERT INTO sync_cursors (workspace_id, link_id, stream, cursor)"
            " VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (workspace_id, link_id, stream)"
            " DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
            claim.workspace_id,
            claim.link_id,
            stream.value,
            cursor,
        )
    totals = await connection.fetchrow(
        """
        UPDATE sync_runs SET
          fetched = fetched + $3, created = created + $4, updated = updated + $5,
          unchanged = unchanged + $6, deleted = deleted + $7, failed = failed + $8,
          failures = CASE WHEN jsonb_array_length(failures) < $9
                          THEN failures || $10::jsonb ELSE failures END,
          progress = $11::jsonb
        WHERE workspace_id = $1 AND id = $2
        RETURNING fetched, created, updated, unchanged, deleted, failed
        """,
        claim.workspace_id,
        claim.run_id,
        fetched,
        written.created,
        written.updated,
        written.unchanged,
        written.deleted,
        len(failures),
        MAX_STORED_FAILURES,
        orjson.dumps(failures[:MAX_STORED_FAILURES], default=str).decode(),
        orjson.dumps(claim.progress).decode(),
    )
    progress = SyncRunProgress(
        link_id=claim.link_id, stream=stream.value, **{name: totals[name] for name in _COUNTS}
    )
    await _event(
        tx,
        claim.workspace_id,
        claim.link_id,
        claim.vendor_id,
        claim.run_id,
        EventType.SYNC_RUN_PROGRESS,
        progress,
    )


async def finish(tx: Transaction, claim: Claim, *, error: str | None, reauth: bool = False) -> None:
    """End the run and release the link: on success schedule the next sync; on failure back
    off; when the vendor rejects the credentials, stop syncing until they are replaced."""
    connection = tx.connection
    totals = await connection.fetchrow(
        "UPDATE sync_runs SET status = $3, finished_at = now(), error = $4"
        " WHERE workspace_id = $1 AND id = $2"
        " RETURNING fetched, created, updated, unchanged, deleted, failed",
        claim.workspace_id,
        claim.run_id,
        "failed" if error else "succeeded",
        error,
    )
    await _event(
        tx,
        claim.workspace_id,
        claim.link_id,
        claim.vendor_id,
        claim.run_id,
        EventType.SYNC_RUN_FAILED if error else EventType.SYNC_RUN_SUCCEEDED,
        SyncRunFinished(
            link_id=claim.link_id, error=error, **{name: totals[name] for name in _COUNTS}
        ),
    )
    if error is None:
        await connection.execute(
            """
            UPDATE vendor_links SET last_synced_at = now(),
              last_full_sync_at = CASE WHEN $3 THEN now() ELSE last_full_sync_at END,
              consecutive_failures = 0, last_error = NULL,
              next_sync_at = now() + sync_interval_seconds * interval '1 second',
              sync_lease_owner = NULL, sync_lease_until = NULL
            WHERE workspace_id = $1 AND id = $2
            """,
            claim.workspace_id,
            claim.link_id,
            claim.full_resync,
        )
        return
    await connection.execute(
        """
        UPDATE vendor_links SET last_error = $3,
          status = CASE WHEN $4 THEN 'needs_reauth' ELSE status END,
          consecutive_failures = consecutive_failures + 1,
          next_sync_at = now() + least(
            sync_interval_seconds * power(2, least(consecutive_failures + 1, 16)), $5
          ) * interval '1 second',
          sync_lease_owner = NULL, sync_lease_until = NULL
        WHERE workspace_id = $1 AND id = $2
        """,
        claim.workspace_id,
        claim.link_id,
        error,
        reauth,
        MAX_BACKOFF_SECONDS,
    )
    if reauth:
        await _event(
            tx,
            claim.workspace_id,
            claim.link_id,
            claim.vendor_id,
            claim.link_id,
            EventType.LINK_NEEDS_REAUTH,
            LinkNeedsReauth(status="needs_reauth", connector=claim.connector, reason=error),
        )


async def release(tx: Transaction, claim: Claim) -> None:
    """Give the lease back without ending the run (the process is stopping)."""
    await tx.connection.execute(
        "UPDATE vendor_links SET sync_lease_owner = NULL, sync_lease_until = NULL"
        " WHERE workspace_id = $1 AND id = $2 AND sync_lease_owner = $3",
        claim.workspace_id,
        claim.link_id,
        claim.owner,
    )


async def has_pending(tx: Transaction, workspace_id: uuid.UUID, link_id: uuid.UUID) -> bool:
    return bool(
        await tx.connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM sync_runs WHERE workspace_id = $1 AND link_id = $2"
            " AND status = 'queued')",
            workspace_id,
            link_id,
        )
    )


async def save_credentials(
    tx: Transaction, *, workspace_id: uuid.UUID, link_id: uuid.UUID, sealed: str
) -> None:
    await tx.connection.execute(
        "UPDATE vendor_links SET credentials_encrypted = $3, updated_at = now()"
        " WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        link_id,
        sealed,
    )


async def due_links(tx: Transaction, limit: int) -> list[asyncpg.Record]:
    """The scheduler's one look across workspaces: ids of active links that are due."""
    return list(await tx.connection.fetch("SELECT * FROM pane_due_links($1)", limit))
