"""Operability: health, readiness when a dependency is down, metrics, startup refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from pane.app import create_app
from pane.db.database import Database
from pane.db.safety import UnsafeDatabaseRole
from tests.conftest import make_settings, running_app


async def test_healthz_and_readyz_when_everything_is_up(http):
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}


async def test_readyz_names_an_unreachable_redis_and_api_keeps_answering(servers, api):
    app = create_app(make_settings(servers, redis_url="redis://127.0.0.1:1/0"))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["failures"] == ["redis unreachable: ConnectionError"]
            assert ready.headers["retry-after"] == "5"
            # Login needs the rate limiter; with Redis down it refuses instead of going unthrottled.
            login = await client.post(
                "/v1/auth/login", json={"email": "x@example.com", "password": "whatever-123"}
            )
            assert login.status_code == 503
            assert login.headers["content-type"] == "application/problem+json"
            assert "rate limiter" in login.json()["detail"]


async def test_pane_does_not_start_without_its_database(servers):
    app = create_app(make_settings(servers, database_url="postgresql://pane_app@127.0.0.1:1/pane"))
    with pytest.raises(OSError, match=r"Connect call failed|Connection refused"):
        async with LifespanManager(app):
            pass


@asynccontextmanager
async def _requests_going_to(app: FastAPI, database: Database) -> AsyncIterator[None]:
    """``app``'s requests served from ``database`` for the block, then from its own again."""
    runtime = app.state.runtime
    own, runtime.database = runtime.database, database
    try:
        yield
    finally:
        await database.dispose()
        runtime.database = own


async def test_a_database_outage_while_running_is_a_503_problem(servers, api):
    owner = await api.signup()
    unreachable = Database("postgresql://pane_app@127.0.0.1:1/pane", pool_size=1)
    async with running_app(servers) as (app, client):
        async with _requests_going_to(app, unreachable):
            for path in ("/v1/leads", "/v1/links"):  # SQL-to-JSON path and ORM path
                outage = await client.get(path, headers=owner.headers)
                assert outage.status_code == 503
            assert outage.headers["content-type"] == "application/problem+json"
            assert outage.headers["retry-after"] == "5"
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["failures"] == ["database unreachable: ConnectionRefusedError"]
        assert (await client.get("/v1/leads", headers=owner.headers)).status_code == 200


async def test_a_request_that_finds_every_database_connection_busy_is_a_503_problem(servers, api):
    owner = await api.signup()
    busy_database = servers.database(pool_size=1, pool_timeout=0.3)
    async with running_app(servers) as (app, client), _requests_going_to(app, busy_database):
        async with busy_database.transaction():  # the pool's one connection
            for path in ("/v1/leads", "/v1/links"):  # SQL-to-JSON path and ORM path
                busy = await client.get(path, headers=owner.headers)
                assert busy.status_code == 503, busy.text
                assert busy.headers["content-type"] == "application/problem+json"
                assert busy.headers["retry-after"] == "5"
                assert "every database connection" in busy.json()["detail"]
        assert (await client.get("/v1/leads", headers=owner.headers)).status_code == 200


async def test_unsafe_runtime_role_refuses_to_start(servers):
    app = create_app(make_settings(servers, database_url=servers.admin_url))
    with pytest.raises(UnsafeDatabaseRole, match="superuser"):
        async with LifespanManager(app):
            pass


async def test_metrics_count_requests_by_route_template(http, api):
    owner = await api.signup()
    await http.get("/v1/leads", headers=owner.headers)
    await http.get("/v1/leads/00000000-0000-0000-0000-000000000000", headers=owner.headers)
    text = (await http.get("/metrics")).text
    assert 'pane_http_requests_total{method="GET",route="/v1/leads",status="200"}' in text
    assert 'route="/v1/leads/{lead_id}",status="404"' in text
    assert "pane_http_request_duration_seconds_bucket" in text


async def test_request_id_is_echoed_or_generated(http):
    response = await http.get("/healthz", headers={"X-Request-Id": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    generated = await http.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert generated.headers["x-request-id"] != "bad id with spaces"
    assert len(generated.headers["x-request-id"]) == 32
