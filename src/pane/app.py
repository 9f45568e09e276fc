"""create_app(): settings, lifespan (engine, Redis, keys), routers, middleware, error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from arq.connections import ArqRedis
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from pane import __version__
from pane.api import (
    api_keys,
    auth,
    changes,
    connectors,
    content,
    hooks,
    leads,
    links,
    me,
    members,
    ops,
    vendors,
)
from pane.api.problems import install_error_handlers, problems, publish_problem_schema
from pane.config import Settings, get_settings
from pane.connectors.registry import connectors as installed_connectors
from pane.db.database import Database
from pane.db.safety import assert_runtime_role_is_safe
from pane.heap import freeze_startup_objects
from pane.logs import configure_logging
from pane.middleware import BodyLimitMiddleware, RequestContextMiddleware
from pane.ratelimit import LoginLimiter
from pane.runtime import Runtime
from pane.secrets import load_key_ring
from pane.services.commits import follow_ups
from pane.services.hub import Hub
from pane.services.security import AccessTokens
from pane.sync.connect import check_link

DESCRIPTION = """\
pane is the reseller's single pane of glass: one workspace that links every vendor and
distributor, with their leads, deals, campaigns, price lists and collateral in one model.

Authenticate with `Authorization: Bearer <token>`, where the token is an access token from
`POST /v1/auth/login` or an API key (`pane_...`). Errors are `application/problem+json`
(RFC 9457). Lists page with `limit` and an opaque `cursor`; pass back `next_cursor` as given.
"""


def _require(value: str | None, name: str) -> str:
    if not value:
        raise RuntimeError(
            f"{name} is not set; start pane with the `pane` command, which provides embedded "
            "servers when no URL is configured"
        )
    return value


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, json=settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database_url = _require(settings.database_url, "PANE_DATABASE_URL")
        redis_url = _require(settings.redis_url, "PANE_REDIS_URL")
        database = Database(
            database_url,
            pool_size=settings.db_pool_size,
            transaction_pooler=settings.database_transaction_pooler,
        )
        # arq's client is a redis client that can also enqueue jobs (syncs asked for by the API)
        redis = ArqRedis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        login_limiter = LoginLimiter(
            redis_url, settings.login_limit_per_account, settings.login_limit_per_ip
        )
        database.after_commit = follow_ups(database, redis)
        hub = Hub(database, redis_url)
        try:
            installed_connectors()  # a broken plugin stops pane now, not at its first sync
            await assert_runtime_role_is_safe(database)
            keyring = load_key_ring(settings)
            app.state.runtime = Runtime(
                settings=settings,
                database=database,
                redis=redis,
                keyring=keyring,
                tokens=AccessTokens(keyring.signing_key, settings.access_token_ttl_seconds),
                login_limiter=login_limiter,
                hub=hub,
                link_check=partial(check_link, settings=settings, redis=redis),
            )
            await hub.start()
            if settings.freeze_startup_objects:
                freeze_startup_objects()
            yield
        finally:
            await hub.stop()
            await login_limiter.aclose()
            await redis.aclose()
            await database.dispose()

    app = FastAPI(
        title="pane",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        responses=problems(500),  # any route: RequestContextMiddleware answers a crash
        # pane's own middleware measures and logs every request (Prometheus, structlog);
        # FastAPI's OpenTelemetry hooks would be a second way, checked on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )

    # Matched in this order, the busiest routes first: every request is tried against each
    # router before it until one matches (~40 µs each, measured on webhooks). Vendors push a
    # webhook for every change they make.
    routers = (
        hooks,
        leads,
        content,
        changes,
        links,
        me,
        members,
        api_keys,
        vendors,
        connectors,
        auth,
        ops,
    )
    for router in routers:
        app.include_router(router.router)
    changes.publish_catalogue(app)
    publish_problem_schema(app)
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key"],
            expose_headers=["ETag", "X-Request-Id", "Retry-After"],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)
    return app
