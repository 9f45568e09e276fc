"""The baselines: Starlette + an asyncpg pool + orjson, connected as the table owner (no RLS),
no auth, no middleware. For bench/api.py, exactly the SQL pane's list endpoint runs; for
bench/webhooks.py, one ``INSERT`` per pushed webhook (no signature check), deduplicated on the
vendor's id as pane's inbox is."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pane.heap import freeze_startup_objects
from pane.principal import ApiKeyPrincipal
from pane.services.leads import LeadFilters, lead_list

LIMIT = 50


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(
        os.environ["BARE_DATABASE_URL"], min_size=4, max_size=int(os.environ.get("BARE_POOL", "32"))
    )
    # As pane does at startup: this server imports pane for its SQL, and full collections
    # over pane's modules would stall it as they stalled pane (a bare server has no such heap).
    freeze_startup_objects()
    yield
    await app.state.pool.close()


async def leads(request: Request) -> Response:
    workspace_id = uuid.UUID(request.headers["x-workspace"])
    principal = ApiKeyPrincipal(key_id=workspace_id, workspace_id=workspace_id, scopes=frozenset())
    query = lead_list(principal, LeadFilters())
    sql, args = query.sql(None, LIMIT), query.args
    async with request.app.state.pool.acquire() as connection:
        rows = await connection.fetch(sql, *args)
    items = [dict(row) for row in rows[:LIMIT]]
    return Response(
        orjson.dumps({"items": items, "next_cursor": None}, default=str),
        media_type="application/json",
    )


BARE_INBOX = """
CREATE TABLE IF NOT EXISTS bench_bare_inbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  link_id uuid NOT NULL,
  webhook_id text NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  body bytea NOT NULL,
  UNIQUE (link_id, webhook_id)
)
"""


async def hook(request: Request) -> Response:
    body = await request.body()
    async with request.app.state.pool.acquire() as connection:
        await connection.execute(
            "INSERT INTO bench_bare_inbox (link_id, webhook_id, body) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            uuid.UUID(request.path_params["link_id"]),
            request.headers["webhook-id"],
            body,
        )
    return Response(b'{"status":"received"}', status_code=202, media_type="application/json")


app = Starlette(
    routes=[Route("/v1/leads", leads), Route("/v1/hooks/{link_id}", hook, methods=["POST"])],
    lifespan=lifespan,
)
