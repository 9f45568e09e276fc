"""What follows a commit, in the process that committed: live change streams are woken
(``pane.services.hub``) and its outbox rows are relayed to the job queue at once. Both are
wake-up calls after the fact: streams also catch up on their own, and the worker's outbox
relay delivers what a process that died (or lost Redis) left behind."""

from __future__ import annotations

import structlog
from arq.connections import ArqRedis

from pane.db.database import AfterCommit, Committed, Database
from pane.services import hub, outbox

log = structlog.get_logger("pane.db")


def follow_ups(database: Database, redis: ArqRedis) -> AfterCommit:
    async def follow_up(committed: Committed) -> None:
        if committed.events:
            try:
                await hub.publish(redis, committed.events)
            except Exception as exc:  # streams catch up at their next look
                log.warning("change wake-up not published", error=str(exc))
        if committed.outbox:
            await outbox.deliver(database, redis, committed.outbox)

    return follow_up
