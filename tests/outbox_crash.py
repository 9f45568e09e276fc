"""Run by test_outbox.py in a process of its own: pane's API asks for a sync, the transaction
commits, and the process is killed before it can enqueue the job (between the commit and the
follow-up that would relay the outbox)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx
from asgi_lifespan import LifespanManager

import pane.app
from pane.app import create_app
from pane.config import Settings
from pane.db.database import AfterCommit, Committed, Database


def _killed_after_commit(database: Database, redis: object) -> AfterCommit:
    async def follow_up(committed: Committed) -> None:
        if committed.outbox:
            os.kill(os.getpid(), signal.SIGKILL)

    return follow_up


async def main(link_id: str, token: str) -> None:
    pane.app.follow_ups = _killed_after_commit  # type: ignore[assignment]
    app = create_app(Settings())
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://pane.test"
        ) as client,
    ):
        await client.post(f"/v1/links/{link_id}/sync", headers={"Authorization": f"Bearer {token}"})
    raise SystemExit("the process should have been killed after its commit")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
