"""The transactional outbox: work that must follow a commit (a sync job today, deliveries
next) is written in the same transaction as the change that calls for it, and relayed to the
job queue after the commit.

The process that committed relays its own rows at once (``Database.after_commit``); a worker
relays whatever is left older than a few seconds, so a process that died between its commit
and its enqueue loses nothing. A job may thus be enqueued twice: jobs are idempotent, and a
job id that is already taken (``sync:{link_id}``) means the work is already on its way.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
import structlog
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from pane.db.database import Database, Transaction, workspace_scope
from pane.ids import new_id

log = structlog.get_logger("pane.outbox")

QUEUE = "pane:queue"
# The relay leaves younger rows to the process that wrote them.
RELAY_AFTER_SECONDS = 5
RELAY_BATCH = 500


async def add(
    tx: Transaction,
    *,
    workspace_id: uuid.UUID,
    job: str,
    kwargs: dict[str, Any],
    job_id: str | None = None,
) -> uuid.UUID:
    """Ask for ``job(**kwargs)`` to run once this transaction has committed."""
    outbox_id = new_id()
    await tx.flush()
    await tx.connection.execute(
        "INSERT INTO outbox (workspace_id, id, job, job_id, kwargs) VALUES ($1, $2, $3, $4, $5)",
        workspace_id,
        outbox_id,
        job,
        job_id,
        orjson.dumps(kwargs).decode(),
    )
    tx.noted_outbox(workspace_id, outbox_id)
    return outbox_id


_TAKE = """
SELECT id, job, job_id, kwargs FROM outbox
WHERE workspace_id = $1 AND id = ANY ($2::uuid[])
ORDER BY id
FOR UPDATE SKIP LOCKED
"""


async def deliver(
    database: Database, redis: ArqRedis, rows: Iterable[tuple[uuid.UUID, uuid.UUID]]
) -> int:
    """Enqueue these outbox rows and delete them, one transaction per workspace. Rows another
    relay holds are skipped; a row whose enqueue fails stays for the next relay. Returns how
    many were enqueued or found already queued."""
    by_workspace: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for workspace_id, outbox_id in rows:
        by_workspace[workspace_id].append(outbox_id)
    delivered = 0
    for workspace_id, ids in by_workspace.items():
        async with database.transaction(workspace_scope(workspace_id)) as tx:
            done: list[uuid.UUID] = []
            for row in await tx.connection.fetch(_TAKE, workspace_id, ids):
                try:
                    await redis.enqueue_job(
                        row["job"],
                        _job_id=row["job_id"],
                        _queue_name=QUEUE,
                        **_kwargs(row["kwargs"]),
                    )
                except (OSError, RedisError) as exc:
                    await tx.connection.execute(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = $3"
                        " WHERE workspace_id = $1 AND id = $2",
                        workspace_id,
                        row["id"],
                        f"{type(exc).__name__}: {exc}",
                    )
                    log.warning("outbox job not enqueued", job=row["job"], error=str(exc))
                    break  # Redis is down: leave the rest for the relay
                done.append(row["id"])
            if done:
                await tx.connection.execute(
                    "DELETE FROM outbox WHERE workspace_id = $1 AND id = ANY ($2::uuid[])",
                    workspace_id,
                    done,
                )
            delivered += len(done)
    return delivered


async def relay_pending(
    database: Database, redis: ArqRedis, *, older_than_seconds: float = RELAY_AFTER_SECONDS
) -> int:
    """Deliver what the writing processes left behind (they died, or Redis was down)."""
    async with database.transaction() as tx:
        pending = await tx.connection.fetch(
            "SELECT workspace_id, id FROM pane_outbox_pending($1, $2 * interval '1 second')",
            RELAY_BATCH,
            older_than_seconds,
        )
    if not pending:
        return 0
    delivered = await deliver(database, redis, [(row[0], row[1]) for row in pending])
    log.info("relayed outbox rows left behind", pending=len(pending), delivered=delivered)
    return delivered


def _kwargs(value: Any) -> dict[str, Any]:
    loaded = orjson.loads(value) if isinstance(value, str | bytes) else value
    assert isinstance(loaded, dict)
    return loaded
