"""The change feed: every committed change once, in commit order, resumable; a late commit is
never skipped; typed by the one catalogue; retention answered with 410; scopes and vendors."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter

from pane.catalogue import EVENT_MODELS, Event, EventType, WorkspaceRenamed
from pane.db.database import workspace_scope
from pane.demo.simulator import Simulator
from pane.demo.simulator.globex import GLOBEX_STATUS
from pane.services import changes, events
from pane.services.events import NewEvent
from pane.sync.engine import sync_link
from tests.conftest import Servers
from tests.factories import Account, Api, assert_problem, bearer, run_row

EVENTS = TypeAdapter(list[Event])


async def feed(http, headers, after: int = 0, **params: Any) -> dict[str, Any]:
    response = await http.get("/v1/changes", params={"after": after, **params}, headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def everything(http, headers, after: int = 0, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = await feed(http, headers, after, **params)
        items += page["items"]
        assert page["next_after"] >= after
        after = page["next_after"]
        if not page["has_more"]:
            return items


async def test_every_kind_of_change_is_in_the_feed_in_order_and_typed(api, http, loopback):
    owner = await api.signup()
    member = await api.member(owner, "member")
    await http.patch(
        f"/v1/members/{member.user_id}", json={"role": "viewer"}, headers=owner.headers
    )
    key = await http.post(
        "/v1/api-keys", json={"name": "crm", "scopes": ["changes:read"]}, headers=owner.headers
    )
    await http.delete(f"/v1/api-keys/{key.json()['id']}", headers=owner.headers)
    invited = await http.post(
        "/v1/invitations", json={"email": "x@example.com", "role": "viewer"}, headers=owner.headers
    )
    await http.delete(f"/v1/invitations/{invited.json()['id']}", headers=owner.headers)
    link = await api.link(owner, await api.new_vendor())
    await http.post(f"/v1/links/{link['id']}/pause", headers=owner.headers)
    await http.patch("/v1/workspace", json={"name": "Renamed Co"}, headers=owner.headers)

    items = await everything(http, owner.headers)
    # Typed by the catalogue: every item validates against its event model.
    typed = EVENTS.validate_python(items)
    assert [type(event) for event in typed] == [
        EVENT_MODELS[EventType(item["type"])] for item in items
    ]
    assert [item["seq"] for item in items] == list(range(1, len(items) + 1))
    assert [item["type"] for item in items] == [
        "workspace.created",
        "invitation.created",
        "member.joined",
        "member.role_changed",
        "api_key.created",
        "api_key.revoked",
        "invitation.created",
        "invitation.revoked",
        "link.created",
        "link.paused",
        "workspace.renamed",
    ]
    role_change = items[3]
    assert role_change["entity_id"] == str(member.user_id)
    assert role_change["actor"] == {"type": "user", "id": str(owner.user_id)}
    assert role_change["data"] == {"changed": {"role": ["member", "viewer"]}}
    assert items[-1]["data"] == {"changed": {"name": ["Acme IT", "Renamed Co"]}}
    assert items[8]["vendor_id"] == link["vendor_id"]
    assert all(item["workspace_id"] == str(owner.workspace_id) for item in items)


async def test_a_synced_update_carries_exactly_the_fields_that_changed(
    api, http, loopback, sync_deps
):
    simulator = Simulator(leads={"globex": 30})
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id, vendor_id = await api.link_demo_vendor(owner, "globex", base)
    [first] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert first.status == "succeeded", first.error
    before = (await feed(http, owner.headers, limit=1000))["next_after"]

    store = simulator.data["globex"]
    store.change_leads(1)
    [moved] = [
        lead for lead in store.leads if lead.updated_at == max(x.updated_at for x in store.leads)
    ]
    [second] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert second.status == "succeeded", second.error

    leads = await everything(http, owner.headers, before, types="lead.updated")
    assert len(leads) == 1
    [update] = leads
    assert update["data"]["external_id"] == moved.id
    assert update["data"]["run_id"] == str(second.run_id)
    assert update["actor"] == {"type": "connector", "id": str(link_id)}
    assert update["vendor_id"] == str(vendor_id)
    changed = update["data"]["changed"]
    assert set(changed) == {"vendor_status", "vendor_updated_at"}
    old_status, new_status = changed["vendor_status"]
    assert new_status == GLOBEX_STATUS[moved.status]
    assert old_status == GLOBEX_STATUS[(moved.status - 1) % 4]
    assert update["data"]["version"] == 2
    # the run's own events bracket the page: queued (by the schedule), started, progress, done
    runs = await everything(
        http, owner.headers, before, types=["sync_run.started", "sync_run.succeeded"]
    )
    assert [item["type"] for item in runs] == ["sync_run.started", "sync_run.succeeded"]
    assert {item["entity_id"] for item in runs} == {str(second.run_id)}
    assert runs[1]["data"]["updated"] == 1


async def test_a_change_to_the_vendor_payload_alone_is_kept_without_an_event(
    api, http, loopback, sync_deps, admin_db
):
    simulator = Simulator(leads={"globex": 5})
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id, _ = await api.link_demo_vendor(owner, "globex", base)
    await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    lead = simulator.data["globex"].leads[0]
    row = await admin_db.fetchrow(
        "SELECT version, raw FROM leads WHERE workspace_id = $1 AND external_id = $2",
        owner.workspace_id,
        lead.id,
    )
    # What the vendor sends beyond pane's fields (Globex's internal note) is all that changes.
    await admin_db.execute(
        "UPDATE leads SET raw = raw || '{\"stale\": true}' WHERE workspace_id = $1",
        owner.workspace_id,
    )
    before = (await feed(http, owner.headers, limit=1000))["next_after"]
    [run] = await sync_link(
        sync_deps,
        workspace_id=owner.workspace_id,
        link_id=link_id,
        streams=["leads"],
        trigger="full_resync",
    )
    assert run.status == "succeeded", run.error
    refreshed = await admin_db.fetchrow(
        "SELECT version, raw FROM leads WHERE workspace_id = $1 AND external_id = $2",
        owner.workspace_id,
        lead.id,
    )
    assert "stale" not in refreshed["raw"], "the vendor's payload is stored afresh"
    assert refreshed["version"] == row["version"]
    lead_events = await everything(http, owner.headers, before, types="lead.updated")
    assert lead_events == []
    assert (await run_row(admin_db, run.run_id))["updated"] == 0


async def _record(tx, workspace_id: uuid.UUID, name: str) -> int:
    return await events.record(
        tx,
        workspace_id=workspace_id,
        actor=("system", None),
        events=[
            NewEvent(
                EventType.WORKSPACE_RENAMED,
                workspace_id,
                WorkspaceRenamed(changed={"name": ["before", name]}),
            )
        ],
    )


async def test_a_transaction_that_commits_late_is_never_skipped(
    api: Api, http, servers: Servers, admin_db
):
    """Writer A takes its sequence number and holds its transaction open; writer B commits
    its own change meanwhile; a reader polling in between must end with both, in order, with
    no gap and no repeat. (With sequence numbers from a plain database sequence, B would
    commit number N+1 while A still held N, and a reader that saw N+1 would skip N.)"""
    owner = await api.signup()
    start = (await feed(http, owner.headers))["next_after"]
    database = servers.database(pool_size=3)
    a_recorded, release_a = asyncio.Event(), asyncio.Event()

    async def writer_a() -> int:
        async with database.transaction(workspace_scope(owner.workspace_id)) as tx:
            seq = await _record(tx, owner.workspace_id, "A")
            a_recorded.set()
            await release_a.wait()
            return seq

    async def writer_b() -> int:
        await a_recorded.wait()
        async with database.transaction(workspace_scope(owner.workspace_id)) as tx:
            return await _record(tx, owner.workspace_id, "B")

    try:
        a, b = asyncio.create_task(writer_a()), asyncio.create_task(writer_b())
        await a_recorded.wait()
        seen: list[dict[str, Any]] = []
        position = start
        # B is really waiting on A (not merely not started yet) while the reader polls.
        deadline = asyncio.get_running_loop().time() + 10
        while not await admin_db.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            " AND query LIKE '%INSERT INTO events%'"
        ):
            assert asyncio.get_running_loop().time() < deadline, "B never queued behind A"
            await asyncio.sleep(0.02)
        for _ in range(5):
            page = await feed(http, owner.headers, position)
            seen += page["items"]
            position = page["next_after"]
            assert position == start, "the feed ran ahead of an uncommitted transaction"
        assert not b.done()
        release_a.set()
        seq_a, seq_b = await a, await b
        while len(seen) < 2:
            page = await feed(http, owner.headers, position)
            seen += page["items"]
            position = page["next_after"]
        assert [item["seq"] for item in seen] == [start + 1, start + 2] == [seq_a, seq_b]
        assert [item["data"]["changed"]["name"][1] for item in seen] == ["A", "B"]
        assert (await feed(http, owner.headers, position))["items"] == []
    finally:
        await database.dispose()


async def test_pages_resume_exactly_where_they_stopped(api, http):
    owner = await api.signup()
    for number in range(7):
        await http.patch("/v1/workspace", json={"name": f"Name {number}"}, headers=owner.headers)
    whole = await everything(http, owner.headers)
    paged: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await feed(http, owner.headers, after, limit=3)
        paged += page["items"]
        after = page["next_after"]
        if not page["has_more"]:
            break
    assert [item["id"] for item in paged] == [item["id"] for item in whole]
    assert len({item["id"] for item in paged}) == len(paged) == 8
    assert after == 8


async def test_filters_skip_without_rescanning(api, http):
    owner = await api.signup()
    for number in range(3):
        await http.patch("/v1/workspace", json={"name": f"Name {number}"}, headers=owner.headers)
    page = await feed(http, owner.headers, types="workspace.created")
    assert [item["type"] for item in page["items"]] == ["workspace.created"]
    # the next read starts past everything already looked at, filtered out or not
    assert page["next_after"] == 4
    assert page["has_more"] is False
    both = await feed(http, owner.headers, types=["workspace.created", "workspace.renamed"])
    assert len(both["items"]) == 4
    other_vendor = await feed(http, owner.headers, vendor_id=str(uuid.uuid4()))
    assert other_vendor["items"] == []
    unknown = await http.get(
        "/v1/changes", params={"types": "lead.exploded"}, headers=owner.headers
    )
    assert assert_problem(unknown, 422)["errors"][0]["field"] == "query.types.0"


async def test_a_position_older_than_retention_is_gone_with_a_way_back(
    api, http, sync_deps, admin_db
):
    owner = await api.signup()
    for number in range(3):
        await http.patch("/v1/workspace", json={"name": f"Name {number}"}, headers=owner.headers)
    await admin_db.execute(
        "UPDATE events SET created_at = now() - interval '40 days'"
        " WHERE workspace_id = $1 AND seq <= 2",
        owner.workspace_id,
    )
    purged = await changes.purge_expired(sync_deps.database, retention_days=30)
    assert purged >= 2
    assert await admin_db.fetchval(
        "SELECT array_agg(seq ORDER BY seq) FROM events WHERE workspace_id = $1",
        owner.workspace_id,
    ) == [3, 4]
    for after in (0, 1):
        gone = await http.get("/v1/changes", params={"after": after}, headers=owner.headers)
        body = assert_problem(gone, 410, "gone")
        assert "updated_since" in body["detail"]
        assert body["resume_after"] == 4
    kept = await feed(http, owner.headers, 2)
    assert [item["seq"] for item in kept["items"]] == [3, 4]


async def test_an_api_key_needs_the_changes_scope(api, http):
    owner = await api.signup()
    leads_only = await api.api_key(owner, ["leads:read"])
    refused = await http.get("/v1/changes", headers=bearer(leads_only))
    assert "changes:read" in assert_problem(refused, 403, "forbidden")["detail"]
    reader = await api.api_key(owner, ["changes:read"])
    items = await everything(http, bearer(reader))
    assert items[0]["type"] == "workspace.created"


async def _vendor_world(api: Api, http) -> tuple[Account, uuid.UUID, str, dict[str, Any]]:
    owner = await api.signup()
    vendor = await api.new_vendor()
    link = await api.link(owner, vendor)
    [lead_id] = await api.seed_leads(owner.workspace_id, vendor, 1)
    await http.patch(
        f"/v1/leads/{lead_id}",
        json={"status": "accepted", "notes": "between us", "owner_id": str(owner.user_id)},
        headers=owner.headers,
    )
    await http.patch(f"/v1/leads/{lead_id}", json={"notes": "still private"}, headers=owner.headers)
    return owner, vendor, await api.vendor_key(vendor), link


async def test_a_vendor_reads_its_own_events_without_the_resellers_notes(api, http):
    owner, vendor, key, link = await _vendor_world(api, http)
    mine = await everything(http, bearer(key), workspace_id=str(owner.workspace_id))
    assert {item["vendor_id"] for item in mine} == {str(vendor)}
    assert [item["type"] for item in mine] == ["link.created", "lead.updated"]
    assert mine[1]["data"]["changed"] == {"status": ["new", "accepted"]}
    assert "between us" not in str(mine)
    assert "still private" not in str(mine)
    everything_owner_sees = await everything(http, owner.headers)
    assert len(everything_owner_sees) > len(mine)

    missing = await http.get("/v1/changes", headers=bearer(key))
    assert assert_problem(missing, 422)["errors"][0]["field"] == "query.workspace_id"
    # a paused link takes the workspace's feed away from the vendor
    await http.post(f"/v1/links/{link['id']}/pause", headers=owner.headers)
    paused = await http.get(
        "/v1/changes", params={"workspace_id": str(owner.workspace_id)}, headers=bearer(key)
    )
    assert_problem(paused, 404, "not-found")


async def test_events_are_purged_across_workspaces_in_batches(api, http, sync_deps, admin_db):
    first, second = await api.signup(), await api.signup()
    cutoff = datetime.now(UTC) - timedelta(days=31)
    await admin_db.execute(
        "UPDATE events SET created_at = $2 WHERE workspace_id = ANY($1::uuid[])",
        [first.workspace_id, second.workspace_id],
        cutoff,
    )
    await changes.purge_expired(sync_deps.database, retention_days=30)
    horizons = await admin_db.fetch(
        "SELECT id, events_purged_seq FROM workspaces WHERE id = ANY($1::uuid[])",
        [first.workspace_id, second.workspace_id],
    )
    assert {row["events_purged_seq"] for row in horizons} == {1}


@pytest.mark.parametrize("after", ["-1", "x", str(2**63)])
async def test_bad_positions_are_named(api, http, after):
    owner = await api.signup()
    response = await http.get("/v1/changes", params={"after": after}, headers=owner.headers)
    assert assert_problem(response, 422)["errors"][0]["field"] == "query.after"
