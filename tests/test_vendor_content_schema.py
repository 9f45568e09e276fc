"""The vendor content tables: margins computed in one place, vendor visibility, cascades."""

from __future__ import annotations

from decimal import Decimal

import asyncpg
import pytest

from pane.ids import new_id
from tests.factories import seed_vendor_content


async def _price_item(admin_db, workspace_id, vendor_id, list_price, cost) -> dict:
    price_list = await admin_db.fetchval(
        "SELECT id FROM price_lists WHERE workspace_id = $1 AND vendor_id = $2",
        workspace_id,
        vendor_id,
    )
    item = new_id()
    await admin_db.execute(
        "INSERT INTO price_items (workspace_id, id, vendor_id, price_list_id, external_id, sku,"
        " currency, list_price, partner_cost) VALUES ($1, $2, $3, $4, $5, $5, 'EUR', $6, $7)",
        workspace_id,
        item,
        vendor_id,
        price_list,
        f"SKU-{item}",
        list_price,
        cost,
    )
    return dict(
        await admin_db.fetchrow(
            "SELECT margin, margin_pct FROM price_items WHERE workspace_id = $1 AND id = $2",
            workspace_id,
            item,
        )
    )


async def test_margins_are_worked_out_by_the_database(api, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor("distributor")
    link = await api.link(owner, vendor)
    await seed_vendor_content(api.admin_url, owner.workspace_id, vendor, link["id"], "m")
    row = await _price_item(
        admin_db, owner.workspace_id, vendor, Decimal("1299.00"), Decimal("974.25")
    )
    assert row == {"margin": Decimal("324.7500"), "margin_pct": Decimal("25.0000")}
    free = await _price_item(admin_db, owner.workspace_id, vendor, Decimal("0"), Decimal("0"))
    assert free["margin_pct"] is None
    unknown_cost = await _price_item(admin_db, owner.workspace_id, vendor, Decimal("10"), None)
    assert unknown_cost == {"margin": None, "margin_pct": None}
    with pytest.raises(asyncpg.CheckViolationError):
        await _price_item(admin_db, owner.workspace_id, vendor, Decimal("-1"), Decimal("0"))


async def test_a_vendor_sees_its_own_price_items_only_where_linked(api, app_db):
    vendor = await api.new_vendor("distributor")
    rival = await api.new_vendor("distributor")
    linked = await api.signup()
    link = await api.link(linked, vendor)
    rival_link = await api.link(linked, rival)
    await seed_vendor_content(api.admin_url, linked.workspace_id, vendor, link["id"], "ours")
    await seed_vendor_content(api.admin_url, linked.workspace_id, rival, rival_link["id"], "theirs")
    async with app_db.transaction():
        await app_db.execute("SELECT set_config('pane.vendor_id', $1, true)", str(vendor))
        skus = {r["sku"] for r in await app_db.fetch("SELECT sku FROM price_items")}
        cursors = await app_db.fetchval("SELECT count(*) FROM sync_cursors")
    assert skus == {"SKU-ours"}
    assert cursors == 0  # sync state belongs to the workspace alone


async def test_deleting_a_link_takes_its_sync_state_but_not_the_data(api, http, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor()
    link = await api.link(owner, vendor)
    await seed_vendor_content(api.admin_url, owner.workspace_id, vendor, link["id"], "gone")
    deleted = await http.delete(f"/v1/links/{link['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    counts = await admin_db.fetchrow(
        "SELECT (SELECT count(*) FROM sync_cursors WHERE workspace_id = $1) AS cursors,"
        " (SELECT count(*) FROM sync_runs WHERE workspace_id = $1) AS runs,"
        " (SELECT count(*) FROM price_items WHERE workspace_id = $1) AS items",
        owner.workspace_id,
    )
    assert dict(counts) == {"cursors": 0, "runs": 0, "items": 1}
