"""An event's wire form is rendered once, when it is appended: what the feed sends is what
pydantic writes for the catalogue's model of that event, and the events a database held before
the rendering existed (migration 0007) read exactly as new ones."""

from __future__ import annotations

import importlib.util
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

import asyncpg
import orjson
import pytest
from alembic import command
from pydantic import TypeAdapter
from sqlalchemy.engine import make_url

from pane.catalogue import Event
from pane.db.database import migration_engine
from pane.db.migrate import alembic_config, upgrade
from pane.demo.simulator import Simulator
from pane.services.events import instant_text
from pane.sync.engine import sync_link
from tests.factories import bearer

EVENT = TypeAdapter(Event)
INSTANT = TypeAdapter(datetime)
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations" / "versions"


def _migration() -> ModuleType:
    [path] = MIGRATIONS.glob("*_0007_event_documents.py")
    spec = importlib.util.spec_from_file_location("event_documents", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _workspace_with_every_kind_of_actor(api, http, loopback, sync_deps):
    """A workspace whose events come from a member, an API key, pane's sync (synced creates
    and updates with their ``changed``) and a link's lifecycle."""
    simulator = Simulator(leads={"globex": 6})
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id, _ = await api.link_demo_vendor(owner, "globex", base)
    [first] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert first.status == "succeeded", first.error
    simulator.data["globex"].change_leads(2)
    [second] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert second.status == "succeeded", second.error
    paused = await http.post(f"/v1/links/{link_id}/pause", headers=owner.headers)
    assert paused.status_code == 200, paused.text
    key = await http.post(
        "/v1/api-keys", json={"name": "crm", "scopes": ["links:write"]}, headers=owner.headers
    )
    assert key.status_code == 201, key.text
    resumed = await http.post(f"/v1/links/{link_id}/resume", headers=bearer(key.json()["key"]))
    assert resumed.status_code == 200, resumed.text
    revoked = await http.delete(f"/v1/api-keys/{key.json()['id']}", headers=owner.headers)
    assert revoked.status_code == 200, revoked.text
    return owner


async def test_a_stored_event_is_what_pydantic_writes_for_its_catalogue_model(
    api, http, loopback, sync_deps, admin_db
):
    owner = await _workspace_with_every_kind_of_actor(api, http, loopback, sync_deps)
    rows = await admin_db.fetch(
        "SELECT document::text FROM events WHERE workspace_id = $1 ORDER BY seq",
        owner.workspace_id,
    )
    kinds = set()
    for row in rows:
        event = EVENT.validate_json(row["document"])
        assert orjson.loads(row["document"]) == orjson.loads(EVENT.dump_json(event))
        kinds.add((event.type, event.actor.type))
    assert {("lead.created", "connector"), ("lead.updated", "connector")} <= kinds
    assert {("link.paused", "user"), ("link.resumed", "api_key")} <= kinds
    assert ("api_key.revoked", "user") in kinds

    served = await http.get("/v1/changes", params={"limit": 1000}, headers=owner.headers)
    assert [orjson.loads(row["document"]) for row in rows] == served.json()["items"]


async def test_events_kept_from_before_the_rendering_read_exactly_as_new_ones(
    api, http, loopback, sync_deps, admin_db
):
    owner = await _workspace_with_every_kind_of_actor(api, http, loopback, sync_deps)
    migration = _migration()
    # The migration's backfill over each event, its payload taken back out of the document.
    rows = await admin_db.fetch(
        f"""
        SELECT e.document::text AS written, ({migration.DOCUMENT})::text AS backfilled
        FROM (SELECT *, (document -> 'data')::jsonb AS data FROM events
              WHERE workspace_id = $1) e
        """,
        owner.workspace_id,
    )
    assert len(rows) > 10
    for row in rows:
        assert row["backfilled"] == row["written"]


MOMENTS = [
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, 0, 120000, tzinfo=timezone(timedelta(hours=5))),
    datetime(2026, 6, 30, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=-3))),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=14))),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=[m.isoformat() for m in MOMENTS])
async def test_an_event_time_is_written_as_pydantic_writes_it(admin_db, moment):
    expected = INSTANT.dump_json(moment.astimezone(UTC)).decode().strip('"')
    for render in (instant_text, _migration().instant_text):
        assert await admin_db.fetchval(f"SELECT {render('$1::timestamptz')}", moment) == expected


async def _migrate(url: str, direction: str, revision: str) -> None:
    engine = migration_engine(url)
    move = command.upgrade if direction == "up" else command.downgrade
    try:
        async with engine.begin() as connection:
            await connection.run_sync(lambda sync: move(alembic_config(sync), revision))
    finally:
        await engine.dispose()


@pytest.fixture
async def database_at_0006(servers) -> AsyncIterator[str]:
    """A database of the test's own, migrated up to the revision before event documents."""
    name = f"pane_test_events_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(servers.admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(servers.admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade(url, "0006")
        yield url
    finally:
        admin = await asyncpg.connect(servers.admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def test_the_migration_turns_kept_events_into_documents_and_back(database_at_0006):
    """Events written before 0007 (their payload in ``data``) come out of the upgrade as the
    documents the writer makes now, and out of the downgrade as they went in."""
    plain = make_url(database_at_0006).set(drivername="postgresql")
    connection = await asyncpg.connect(plain.render_as_string(hide_password=False))
    workspace_id, actor_id = uuid.uuid4(), uuid.uuid4()
    events = [
        (
            1,
            uuid.uuid4(),
            "lead.created",
            uuid.uuid4(),
            "connector",
            actor_id,
            '{"run_id": null, "external_id": "A-1"}',  # as jsonb writes it back
        ),
        (
            2,
            uuid.uuid4(),
            "workspace.renamed",
            workspace_id,
            "system",
            None,
            '{"changed": {"name": ["Kept", "Acme \\"Ltd\\""]}}',
        ),
    ]
    try:
        await connection.execute(
            "INSERT INTO workspaces (id, name, event_seq) VALUES ($1, 'Kept', 2)", workspace_id
        )
        for seq, event_id, event_type, entity_id, actor_type, actor, data in events:
            await connection.execute(
                "INSERT INTO events (workspace_id, seq, id, type, entity_id, actor_type,"
                " actor_id, data, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
                workspace_id,
                seq,
                event_id,
                event_type,
                entity_id,
                actor_type,
                actor,
                data,
                datetime(2026, 11, 30, 12, 0, seq, 250000 * (seq - 1), tzinfo=UTC),
            )
        await _migrate(database_at_0006, "up", "0007")
        documents = await connection.fetch(
            "SELECT document::text FROM events WHERE workspace_id = $1 ORDER BY seq", workspace_id
        )
        parsed = [EVENT.validate_json(row["document"]) for row in documents]
        assert [str(event.occurred_at) for event in parsed] == [
            "2026-11-30 12:00:01+00:00",
            "2026-11-30 12:00:02.250000+00:00",
        ]
        assert [orjson.loads(row["document"]) for row in documents] == [
            orjson.loads(EVENT.dump_json(event)) for event in parsed
        ]
        assert parsed[1].actor.id is None
        assert parsed[1].data.changed["name"][1] == 'Acme "Ltd"'

        await _migrate(database_at_0006, "down", "0006")
        restored = await connection.fetch(
            "SELECT data::text FROM events WHERE workspace_id = $1 ORDER BY seq", workspace_id
        )
        assert [row["data"] for row in restored] == [data for *_, data in events]
    finally:
        await connection.close()
