"""The arq worker: shared clients live in ``ctx``; jobs take ids and open their own sessions."""

from __future__ import annotations

from typing import Any

import structlog
from arq import cron
from arq.connections import RedisSettings
from arq.worker import Worker

from pane.config import Settings
from pane.connectors.registry import connectors
from pane.db.engine import create_engine, create_sessionmaker
from pane.db.safety import assert_runtime_role_is_safe
from pane.services.auth import purge_expired_refresh_tokens

log = structlog.get_logger("pane.worker")


async def purge_refresh_tokens(ctx: dict[str, Any]) -> int:
    """Drop refresh tokens a day past expiry; reuse detection needs none older than that."""
    async with ctx["sessionmaker"]() as session, session.begin():
        purged = await purge_expired_refresh_tokens(session)
    log.info("purged expired refresh tokens", count=purged)
    return purged


def build_worker(settings: Settings, *, handle_signals: bool = True) -> Worker:
    assert settings.database_url
    assert settings.redis_url

    async def startup(ctx: dict[str, Any]) -> None:
        connectors()  # refuse to run with a connector plugin that does not load
        engine = create_engine(settings.database_url or "", pool_size=settings.db_pool_size)
        await assert_runtime_role_is_safe(engine)
        ctx["engine"] = engine
        ctx["sessionmaker"] = create_sessionmaker(engine)
        ctx["settings"] = settings

    async def shutdown(ctx: dict[str, Any]) -> None:
        engine = ctx.get("engine")
        if engine is not None:
            await engine.dispose()

    return Worker(
        functions=[purge_refresh_tokens],
        cron_jobs=[cron(purge_refresh_tokens, hour={3}, minute={17}, run_at_startup=False)],
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        handle_signals=handle_signals,
        queue_name="pane:queue",
        health_check_key="pane:worker:health",
    )
