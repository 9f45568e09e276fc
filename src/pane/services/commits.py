"""What follows a commit, in the process that committed: live change streams are woken
(``pane.services.hub``) and its outbox rows are relayed to the job queue at once. Both are
wake-up calls after the fact: streams also catch up on their own, and the worker's outbox
relay delivers what a process that died (or lost Redis) left behind."""

from __future__ import annotations

import asyncio
import uuid

import structlog
from arq.connections import ArqRedis

from pane.db.database import AfterCommit, Committed, Database
from pane.services import hub, outbox

log = structlog.get_logger("pane.db")


class _Batches:
    """Outbox rows of this process's commits, relayed in batches: rows committed while a
    batch is being relayed go together in the next one, one transaction per workspace rather
    than one per commit (taking webhooks in, relaying each commit's row alone was half of
    the work). A commit's follow-up waits until the batch with its rows is relayed."""

    def __init__(self, database: Database, redis: ArqRedis) -> None:
        self._database = database
        self._redis = redis
        self._rows: list[tuple[uuid.UUID, uuid.UUID]] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._relaying: asyncio.Task[None] | None = None

    async def relay(self, rows: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        relayed = asyncio.get_running_loop().create_future()
        self._rows.extend(rows)
        self._waiting.append(relayed)
        if self._relaying is None or self._relaying.done():
            self._relaying = asyncio.create_task(self._relay_all())
        await relayed

    async def _relay_all(self) -> None:
        while self._rows:
            rows, waiting = self._rows, self._waiting
            self._rows, self._waiting = [], []
            try:
                await outbox.deliver(self._database, self._redis, rows)
            except Exception as exc:  # each waiting follow-up reports it
                for future in waiting:
                    if not future.done():  # not given up on (cancelled at shutdown)
                        future.set_exception(exc)
            else:
                for future in waiting:
                    if not future.done():
                        future.set_result(None)


def follow_ups(database: Database, redis: ArqRedis) -> AfterCommit:
    batches = _Batches(database, redis)

    async def follow_up(committed: Committed) -> None:
        if committed.events:
            try:
                await hub.publish(redis, committed.events)
            except Exception as exc:  # streams catch up at their next look
                log.warning("change wake-up not published", error=str(exc))
        if committed.outbox:
            await batches.relay(committed.outbox)

    return follow_up
