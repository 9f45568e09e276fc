"""Syncs as the reseller sees them: asked for over the API, followed in the run history,
scheduled by the worker; incremental reads, tombstones from a full resync, link checks."""

from __future__ import annotations

import uuid

import pytest
from arq.connections import ArqRedis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pane.demo.simulator import Simulator
from pane.demo.simulator.globex import GLOBEX_STATUS
from pane.sync.engine import sync_link
from pane.sync.worker import enqueue_due_links
from tests.conftest import running_app
from tests.factories import (
    LINK_CONFIG,
    assert_problem,
    error_fields,
    other_redis_db,
    price_file,
    run_row,
)

CSV_CONFIG = {"columns": {"sku": "sku", "currency": "currency", "list_price": "price"}}


class EditablePriceFile:
    def __init__(self, rows: list[str]) -> None:
        self.rows = rows
        self.app = Starlette(routes=[Route("/prices.csv", self.serve)])

    async def serve(self, request: Request) -> PlainTextResponse:
        return PlainTextResponse("sku,currency,price\n" + "\n".join(self.rows) + "\n")


async def test_a_sync_asked_for_is_queued_enqueued_and_followed(
    api, http, loopback, sync_deps, redis
):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    started = await http.post(f"/v1/links/{link['id']}/sync", headers=owner.headers)
    assert started.status_code == 202, started.text
    run = started.json()
    assert run["status"] == "queued"
    assert run["trigger"] == "manual"
    assert run["streams"] == ["price_lists"]
    # the job is in the queue under the link's one job id
    assert await redis.exists(f"arq:job:sync:{link['id']}")
    # asking again while it waits gives the same run
    again = await http.post(f"/v1/links/{link['id']}/sync", headers=owner.headers)
    assert again.json()["id"] == run["id"]

    [result] = await sync_link(
        sync_deps,
        workspace_id=owner.workspace_id,
        link_id=uuid.UUID(link["id"]),
        run_id=uuid.UUID(run["id"]),
    )
    assert str(result.run_id) == run["id"]
    shown = (
        await http.get(f"/v1/links/{link['id']}/runs/{run['id']}", headers=owner.headers)
    ).json()
    assert shown["status"] == "succeeded"
    assert (shown["fetched"], shown["created"]) == (1, 1)
    history = (await http.get(f"/v1/links/{link['id']}/runs", headers=owner.headers)).json()
    assert [item["id"] for item in history["items"]] == [run["id"]]
    items = (await http.get("/v1/price-items", headers=owner.headers)).json()["items"]
    assert [item["sku"] for item in items] == ["FW-200"]
    linked = (await http.get(f"/v1/links/{link['id']}", headers=owner.headers)).json()
    assert linked["last_synced_at"] is not None
    assert linked["last_error"] is None
    await redis.delete(f"arq:job:sync:{link['id']}")


async def test_syncs_refused_for_paused_links_and_streams_the_connector_lacks(api, http, admin_db):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    wrong = await http.post(
        f"/v1/links/{link['id']}/sync", json={"streams": ["leads"]}, headers=owner.headers
    )
    body = assert_problem(wrong, 422)
    assert "does not read leads" in body["detail"]
    for bad, field in (
        ({"streams": ["contracts"]}, "body.streams.0"),
        ({"streams": []}, "body.streams"),
        ({"full_resync": "sometimes"}, "body.full_resync"),
        ({"priority": "high"}, "body.priority"),
    ):
        refused = await http.post(f"/v1/links/{link['id']}/sync", json=bad, headers=owner.headers)
        assert error_fields(assert_problem(refused, 422)) == [field]
    assert (
        await admin_db.fetchval(
            "SELECT count(*) FROM sync_runs WHERE link_id = $1", uuid.UUID(link["id"])
        )
        == 0
    )
    await http.post(f"/v1/links/{link['id']}/pause", headers=owner.headers)
    paused = await http.post(f"/v1/links/{link['id']}/sync", headers=owner.headers)
    assert "paused" in assert_problem(paused, 409)["detail"]
    viewer_key = await http.post(
        "/v1/api-keys", json={"name": "crm", "scopes": ["links:read"]}, headers=owner.headers
    )
    if viewer_key.status_code == 201:
        headers = {"Authorization": f"Bearer {viewer_key.json()['key']}"}
        refused = await http.post(f"/v1/links/{link['id']}/sync", headers=headers)
        assert_problem(refused, 403)


async def test_a_link_the_vendor_refuses_is_not_saved(api, http, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor()
    refused = await http.post(
        "/v1/links",
        json={
            "vendor_id": str(vendor),
            "connector": "csv_price_list",
            "config": {**CSV_CONFIG, "url": price_file("prices.csv")},
            "credentials": {"token": "revoked-last-week"},
        },
        headers=owner.headers,
    )
    body = assert_problem(refused, 422)
    assert "refused the credentials" in body["detail"]
    missing = await http.post(
        "/v1/links",
        json={
            "vendor_id": str(vendor),
            "connector": "csv_price_list",
            "config": {**CSV_CONFIG, "url": price_file("nothing-here.txt")},
        },
        headers=owner.headers,
    )
    assert "404" in assert_problem(missing, 422)["detail"]
    assert (
        await admin_db.fetchval(
            "SELECT count(*) FROM vendor_links WHERE workspace_id = $1", owner.workspace_id
        )
        == 0
    )


async def test_incremental_syncs_bring_only_what_changed(api, loopback, sync_deps, admin_db):
    simulator = Simulator(leads={"globex": 120})
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id, _ = await api.link_demo_vendor(owner, "globex", base)
    [first] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert first.status == "succeeded", first.error
    first_run = await run_row(admin_db, first.run_id)
    assert first_run["streams"] == ["assets", "campaigns", "leads"]  # what Globex's manifest reads
    assert first_run["created"] >= 120
    lead = simulator.data["globex"].leads[5]
    stored = await admin_db.fetchrow(
        "SELECT first_name, last_name, email, vendor_status FROM leads"
        " WHERE workspace_id = $1 AND external_id = $2",
        owner.workspace_id,
        lead.id,
    )
    assert (stored["first_name"], stored["last_name"], stored["email"]) == (
        lead.first_name,
        lead.last_name,
        lead.email,
    )
    assert stored["vendor_status"] == GLOBEX_STATUS[lead.status]  # the vendor's own word
    seq_before = await admin_db.fetchval(
        "SELECT max(seq) FROM events WHERE workspace_id = $1", owner.workspace_id
    )

    simulator.data["globex"].add_leads(3)
    simulator.data["globex"].change_leads(2)
    simulator.data["globex"].delete_leads(1)
    [second] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    run = await run_row(admin_db, second.run_id)
    assert (run["created"], run["updated"], run["deleted"]) == (3, 2, 1)
    # not everything again: the changes and an overlap (Globex times are to the minute),
    # which changed nothing
    assert run["fetched"] < 60
    assert run["unchanged"] == run["fetched"] - 6
    new_events = await admin_db.fetch(
        "SELECT split_part(type, '.', 2) AS action FROM events"
        " WHERE workspace_id = $1 AND seq > $2 AND type LIKE 'lead.%'",
        owner.workspace_id,
        seq_before,
    )
    assert sorted(row["action"] for row in new_events) == [
        "created",
        "created",
        "created",
        "deleted",
        "updated",
        "updated",
    ]
    live = await admin_db.fetchval(
        "SELECT count(*) FROM leads WHERE workspace_id = $1 AND deleted_at IS NULL",
        owner.workspace_id,
    )
    assert live == 120 + 3 - 1


async def test_a_full_resync_turns_what_the_vendor_dropped_into_tombstones(
    api, http, loopback, sync_deps, admin_db
):
    price_file_app = EditablePriceFile(["A-1,EUR,10", "B-2,EUR,20", "C-3,EUR,30"])
    base = loopback.mount(price_file_app.app)
    owner = await api.signup()
    link_id, _ = await api.link_new_vendor(
        owner, "csv_price_list", {**CSV_CONFIG, "url": f"{base}/prices.csv"}, {}
    )
    await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    price_file_app.rows = ["A-1,EUR,10", "B-2,EUR,25"]  # C-3 silently gone, B-2 repriced

    await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    listed = (await http.get("/v1/price-items", headers=owner.headers)).json()["items"]
    assert sorted(item["sku"] for item in listed) == ["A-1", "B-2", "C-3"]  # not yet noticed

    full = await http.post(
        f"/v1/links/{link_id}/sync", json={"full_resync": True}, headers=owner.headers
    )
    assert full.json()["trigger"] == "full_resync"
    [result] = await sync_link(
        sync_deps,
        workspace_id=owner.workspace_id,
        link_id=link_id,
        run_id=uuid.UUID(full.json()["id"]),
    )
    run = await run_row(admin_db, result.run_id)
    assert run["full_resync"] is True
    assert run["deleted"] == 1
    listed = (await http.get("/v1/price-items", headers=owner.headers)).json()["items"]
    assert sorted(item["sku"] for item in listed) == ["A-1", "B-2"]
    gone = await admin_db.fetchrow(
        "SELECT deleted_at FROM price_items WHERE workspace_id = $1 AND sku = 'C-3'",
        owner.workspace_id,
    )
    assert gone["deleted_at"] is not None
    assert (
        await admin_db.fetchval(
            "SELECT count(*) FROM sync_seen WHERE workspace_id = $1", owner.workspace_id
        )
        == 0
    )


@pytest.fixture
async def scheduler_redis(servers):
    redis = ArqRedis.from_url(other_redis_db(servers.redis_url, 6))
    await redis.flushdb()
    try:
        yield redis
    finally:
        await redis.flushdb()
        await redis.aclose()


async def test_the_scheduler_enqueues_due_links_once_each(
    api, sync_deps, scheduler_redis, admin_db
):
    owner = await api.signup()
    due = await api.link(owner, await api.new_vendor())
    later = await api.link(owner, await api.new_vendor())
    await admin_db.execute(
        "UPDATE vendor_links SET next_sync_at = now() + interval '1 hour' WHERE id = $1",
        uuid.UUID(later["id"]),
    )
    context = {"sync": sync_deps, "redis": scheduler_redis}
    await enqueue_due_links(context)
    assert await scheduler_redis.exists(f"arq:job:sync:{due['id']}")
    assert not await scheduler_redis.exists(f"arq:job:sync:{later['id']}")
    queued = await scheduler_redis.zcard("pane:queue")
    await enqueue_due_links(context)  # the next tick: the same job id is not queued twice
    assert await scheduler_redis.zcard("pane:queue") == queued


async def test_a_sync_asked_for_while_redis_is_down_still_happens(servers, api, admin_db):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    async with running_app(servers, redis_url="redis://127.0.0.1:1/0") as (_, client):
        started = await client.post(f"/v1/links/{link['id']}/sync", headers=owner.headers)
        # a new link cannot be checked without Redis (tokens, the vendor's rate limit): 503
        vendor = await api.new_vendor()
        refused = await client.post(
            "/v1/links",
            json={"vendor_id": str(vendor), "connector": "csv_price_list", "config": LINK_CONFIG},
            headers=owner.headers,
        )
    assert_problem(refused, 503)
    assert not await admin_db.fetchval(
        "SELECT count(*) FROM vendor_links WHERE vendor_id = $1", vendor
    )
    # the run is committed before the job is enqueued; the enqueue failing loses nothing
    assert started.status_code == 202, started.text
    status = await admin_db.fetchval(
        "SELECT status FROM sync_runs WHERE id = $1", uuid.UUID(started.json()["id"])
    )
    assert status == "queued"
    # and the scheduler's next tick finds the link by its queued run, whatever its interval
    await admin_db.execute(
        "UPDATE vendor_links SET next_sync_at = now() + interval '1 hour' WHERE id = $1",
        uuid.UUID(link["id"]),
    )
    due = await admin_db.fetch("SELECT link_id FROM pane_due_links(100000)")
    assert uuid.UUID(link["id"]) in {row["link_id"] for row in due}
