"""What the vendors and the machine can do to a sync, and what pane does about it: a worker
killed mid-sync, vendors that throttle, fail, send malformed records or revoke credentials,
and two workers racing for the same link."""

from __future__ import annotations

import asyncio
import copy
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from arq.connections import ArqRedis
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from pane.db.database import workspace_scope
from pane.demo.manifests import demo_link
from pane.demo.simulator import Simulator
from pane.services.sync import enqueue_sync
from pane.sync import runs
from pane.sync.engine import SyncDeps, _keep_lease, sync_link
from tests.conftest import Servers
from tests.factories import other_redis_db, run_row
from tests.loopback import Loopback
from tests.processes import start_worker, wait_for


def initech_leads(base: str, page_size: int = 50) -> dict[str, Any]:
    link = copy.deepcopy(demo_link("initech", base))
    leads = link["config"]["manifest"]["streams"]["leads"]
    leads["page_size"] = page_size
    link["config"]["manifest"]["streams"] = {"leads": leads}
    return link


async def link_initech(api, owner, base: str, page_size: int = 50) -> uuid.UUID:
    link = initech_leads(base, page_size)
    link_id, _ = await api.link_new_vendor(
        owner, link["connector"], link["config"], link["credentials"]
    )
    return link_id


async def lead_ids(db: asyncpg.Connection, workspace_id: uuid.UUID) -> list[str]:
    rows = await db.fetch("SELECT external_id FROM leads WHERE workspace_id = $1", workspace_id)
    return [row["external_id"] for row in rows]


async def test_a_worker_killed_mid_sync_is_resumed_with_nothing_lost_or_doubled(
    api, servers: Servers, loopback: Loopback, admin_db
):
    total = 1500
    simulator = Simulator(leads={"initech": total}, initech_slow_seconds=0.1)
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id = await link_initech(api, owner, base)
    redis_url = other_redis_db(servers.redis_url, 5)
    redis = ArqRedis.from_url(redis_url)
    first = start_worker(servers, redis_url)
    second = None
    try:
        assert await enqueue_sync(
            redis, workspace_id=owner.workspace_id, link_id=link_id, trigger="manual"
        )

        async def some_pages_committed() -> bool:
            return 0 < len(await lead_ids(admin_db, owner.workspace_id)) < total

        await wait_for(some_pages_committed, 30, "the first pages")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = len(await lead_ids(admin_db, owner.workspace_id))
        requests_at_kill = simulator.initech.requests

        second = start_worker(servers, redis_url)

        async def finished() -> bool:
            status = await admin_db.fetchval(
                "SELECT status FROM sync_runs WHERE workspace_id = $1", owner.workspace_id
            )
            return status in ("succeeded", "failed")

        await wait_for(finished, 60, "the resumed run to finish")
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
        await redis.aclose()

    ids = await lead_ids(admin_db, owner.workspace_id)
    assert len(ids) == len(set(ids)) == total
    run = await admin_db.fetchrow(
        "SELECT * FROM sync_runs WHERE workspace_id = $1", owner.workspace_id
    )
    assert run["status"] == "succeeded", run["error"]
    assert run["created"] == total
    # resumed from the last committed page, not from the start: the second worker asked
    # for about the pages that were left (plus the one in flight when the first was killed)
    pages_left = -(-(total - at_kill) // 50)
    assert simulator.initech.requests - requests_at_kill <= pages_left + 2
    cursor = await admin_db.fetchval(
        "SELECT cursor FROM sync_cursors WHERE link_id = $1 AND stream = 'leads'", link_id
    )
    newest = max(lead.updated_at for lead in simulator.data["initech"].leads)
    assert cursor is not None
    assert datetime.fromisoformat(cursor) == newest
    events = await admin_db.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1 AND type LIKE 'lead.%'",
        owner.workspace_id,
    )
    assert events == total


async def test_two_workers_racing_for_one_link_make_one_sync(
    api, settings, servers: Servers, loopback: Loopback, sync_deps: SyncDeps, admin_db
):
    simulator = Simulator(leads={"initech": 400}, initech_slow_seconds=0.05)
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id = await link_initech(api, owner, base)
    before = simulator.initech.requests
    assert settings.database_url
    other_database = servers.database(pool_size=2)
    other = SyncDeps(
        database=other_database, redis=sync_deps.redis, settings=settings, keyring=sync_deps.keyring
    )
    try:
        results = await asyncio.gather(
            sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id),
            sync_link(other, workspace_id=owner.workspace_id, link_id=link_id),
        )
    finally:
        await other_database.dispose()
    assert sorted(len(result) for result in results) == [0, 1]  # one ran, one found it taken
    assert len(await lead_ids(admin_db, owner.workspace_id)) == 400
    assert simulator.initech.requests - before == 8  # 400 leads in pages of 50, read once
    assert (
        await admin_db.fetchval(
            "SELECT count(*) FROM sync_runs WHERE workspace_id = $1", owner.workspace_id
        )
        == 1
    )


async def test_retry_after_is_honoured_and_every_lead_arrives(
    api, loopback: Loopback, sync_deps: SyncDeps, admin_db
):
    simulator = Simulator(leads={"initech": 200})
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id = await link_initech(api, owner, base)
    simulator.initech.throttle_every = 2  # every second request: 429, Retry-After: 1
    started = time.monotonic()
    [result] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    elapsed = time.monotonic() - started
    assert result.status == "succeeded", result.error
    assert len(await lead_ids(admin_db, owner.workspace_id)) == 200
    throttled = simulator.initech.requests // 2
    assert throttled >= 4
    assert elapsed >= throttled * 1.0  # waited as asked each time, not the 10 ms backoff


async def test_persistent_500s_are_retried_then_the_run_fails_with_the_error(
    api, loopback: Loopback, sync_deps: SyncDeps, admin_db
):
    simulator = Simulator(leads={"initech": 60})
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id = await link_initech(api, owner, base)
    simulator.initech.fail_every = 1
    before = simulator.initech.requests
    [result] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert result.status == "failed"
    assert simulator.initech.requests - before == sync_deps.settings.sync_http_attempts
    run = await run_row(admin_db, result.run_id)
    assert run["status"] == "failed"
    assert "500" in run["error"]
    link = await admin_db.fetchrow(
        "SELECT status, consecutive_failures, last_error, next_sync_at - now() AS wait,"
        " sync_interval_seconds FROM vendor_links WHERE id = $1",
        link_id,
    )
    assert link["status"] == "active"  # a vendor outage is not a credentials problem
    assert link["consecutive_failures"] == 1
    assert "500" in link["last_error"]
    # backed off: the next try waits longer than the normal interval
    assert link["wait"].total_seconds() > link["sync_interval_seconds"] * 1.5
    # and a second failure backs off further
    await admin_db.execute("UPDATE vendor_links SET next_sync_at = now() WHERE id = $1", link_id)
    await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    wait = await admin_db.fetchval(
        "SELECT next_sync_at - now() FROM vendor_links WHERE id = $1", link_id
    )
    assert wait > link["wait"]


async def test_revoked_credentials_move_the_link_to_needs_reauth(
    api, http, loopback: Loopback, sync_deps: SyncDeps, admin_db
):
    simulator = Simulator(leads={"initech": 30})
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id = await link_initech(api, owner, base)
    simulator.revoke("initech")
    before = simulator.initech.requests
    [result] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert result.status == "needs_reauth"
    link = (await http.get(f"/v1/links/{link_id}", headers=owner.headers)).json()
    assert link["status"] == "needs_reauth"
    assert "credentials" in link["last_error"]
    run = await run_row(admin_db, result.run_id)
    assert run["status"] == "failed"
    assert "rejected the credentials" in run["error"]
    # it stops retrying: no job runs it, the scheduler does not list it
    assert await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id) == []
    due = await admin_db.fetch("SELECT link_id FROM pane_due_links(10000)")
    assert link_id not in {row["link_id"] for row in due}
    assert simulator.initech.requests == before  # basic auth refused: no lead requests counted
    event = await admin_db.fetchval(
        "SELECT type FROM events WHERE workspace_id = $1 AND type LIKE 'link.%'"
        " ORDER BY seq DESC LIMIT 1",
        owner.workspace_id,
    )
    assert event == "link.needs_reauth"
    sync = await http.post(f"/v1/links/{link_id}/sync", headers=owner.headers)
    assert sync.status_code == 409


BAD_ROWS = (
    "sku,currency,price\n"
    "GOOD-1,EUR,10.00\n"
    "BAD-1,EUR,ten euros\n"
    "GOOD-2,EUR,20.00\n"
    ",EUR,5.00\n"
    "GOOD-3,EURO,30.00\n"
)


async def test_malformed_records_are_recorded_and_the_rest_load(
    api, loopback: Loopback, sync_deps: SyncDeps, admin_db
):
    async def price_list(request: Any) -> PlainTextResponse:
        return PlainTextResponse(BAD_ROWS)

    base = loopback.mount(Starlette(routes=[Route("/prices.csv", price_list)]))
    owner = await api.signup()
    config = {
        "url": f"{base}/prices.csv",
        "columns": {"sku": "sku", "currency": "currency", "list_price": "price"},
    }
    link_id, _ = await api.link_new_vendor(owner, "csv_price_list", config, {})
    [result] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert result.status == "succeeded"
    skus = await admin_db.fetch(
        "SELECT sku FROM price_items WHERE workspace_id = $1 ORDER BY sku", owner.workspace_id
    )
    assert [row["sku"] for row in skus] == ["GOOD-1", "GOOD-2"]
    run = await run_row(admin_db, result.run_id)
    assert (run["fetched"], run["created"], run["failed"]) == (5, 2, 3)
    failures = orjson.loads(run["failures"])
    assert {failure["raw"]["sku"] for failure in failures} == {"BAD-1", "", "GOOD-3"}
    bad = next(failure for failure in failures if failure["raw"]["sku"] == "BAD-1")
    assert "ten euros" in bad["reason"]


async def test_a_lease_outlasts_a_moment_with_no_free_database_connection(
    api, settings, servers: Servers, loopback: Loopback, sync_deps: SyncDeps, admin_db
):
    """The renewal finds the worker's pool busy past its timeout once; the run goes on, so
    the next renewal must still come, or another worker could take the link mid-run."""
    owner = await api.signup()
    link_id = await link_initech(api, owner, loopback.mount(Simulator(leads={"initech": 1}).app))
    async with sync_deps.database.transaction(workspace_scope(owner.workspace_id)) as tx:
        claim = await runs.claim(
            tx,
            workspace_id=owner.workspace_id,
            link_id=link_id,
            run_id=None,
            streams=None,
            trigger="manual",
            lease_seconds=settings.sync_lease_seconds,
        )
    assert claim is not None
    interval = settings.sync_lease_seconds / 3
    busy_database = servers.database(pool_size=1, pool_timeout=0.3)
    busy = SyncDeps(
        database=busy_database, redis=sync_deps.redis, settings=settings, keyring=sync_deps.keyring
    )
    run = asyncio.create_task(asyncio.sleep(3600))  # stands for the run the keeper guards
    keeper = asyncio.create_task(_keep_lease(busy, claim, run))
    try:
        async with busy_database.transaction():  # the pool's one connection, past a renewal
            await asyncio.sleep(interval * 1.4)
        freed = datetime.now(UTC)
        await asyncio.sleep(interval * 1.2)
        lease_until = await admin_db.fetchval(
            "SELECT sync_lease_until FROM vendor_links WHERE id = $1", link_id
        )
        assert not keeper.done()
        assert not run.done()
        assert lease_until > freed + timedelta(seconds=settings.sync_lease_seconds - interval)
    finally:
        keeper.cancel()
        run.cancel()
        await busy_database.dispose()
