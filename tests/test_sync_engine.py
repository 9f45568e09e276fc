"""The sync engine end to end: a simulated vendor over loopback, real PostgreSQL and Redis.
Each page's rows, events, counts and cursor commit together; reruns change nothing; failures
are recorded where a reseller can see them."""

from __future__ import annotations

from typing import Any

from pane.demo.manifests import demo_link
from pane.demo.simulator import Simulator
from pane.sync.engine import sync_link
from tests.factories import run_row
from tests.loopback import Loopback


def northwind_config(base: str) -> dict[str, Any]:
    return dict(demo_link("northwind", base)["config"])


async def test_a_price_list_syncs_with_margins_and_events(
    api, loopback: Loopback, sync_deps, admin_db
):
    simulator = Simulator(leads_per_vendor=1)
    base = loopback.mount(simulator.app)
    owner = await api.signup()
    link_id, _ = await api.link_new_vendor(
        owner, "csv_price_list", northwind_config(base), {"token": "northwind-demo-token"}
    )
    [result] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert result.status == "succeeded", result.error
    run = await run_row(admin_db, result.run_id)
    items = await admin_db.fetch(
        "SELECT sku, currency, list_price, partner_cost, margin, margin_pct FROM price_items"
        " WHERE workspace_id = $1 ORDER BY sku",
        owner.workspace_id,
    )
    assert run["fetched"] == run["created"] == len(items) == 6
    fw = next(item for item in items if item["sku"] == "FW-200")
    assert (str(fw["list_price"]), str(fw["partner_cost"]), str(fw["margin"])) == (
        "1890.0000",
        "1474.2000",
        "415.8000",
    )
    events = await admin_db.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1 AND type LIKE 'price_item.%'",
        owner.workspace_id,
    )
    assert events == 6

    [again] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert again.status == "succeeded"
    rerun = await run_row(admin_db, again.run_id)
    # an unchanged file is not even read again (its digest is the cursor)
    assert (rerun["created"], rerun["updated"]) == (0, 0)
    assert (
        await admin_db.fetchval(
            "SELECT count(*) FROM events WHERE workspace_id = $1 AND type LIKE 'price_item.%'",
            owner.workspace_id,
        )
        == 6
    )
