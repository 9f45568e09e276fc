"""Readiness: can this process reach what it needs right now?"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from pane.db.database import Database

CHECK_TIMEOUT_SECONDS = 2.0


async def database_failure(database: Database) -> str | None:
    """None when the database answers, else what went wrong."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), database.transaction() as tx:
            await tx.connection.execute("SELECT 1")
    except Exception as exc:
        return f"database unreachable: {type(exc).__name__}"
    return None


async def redis_failure(redis: Redis) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await redis.ping()
    except Exception as exc:
        return f"redis unreachable: {type(exc).__name__}"
    return None
