"""Campaigns, price items and assets as the SPA reads them."""

from __future__ import annotations

import asyncpg

from pane.ids import new_id
from tests.factories import assert_problem, seed_vendor_content


async def _offer(admin_url, workspace_id, vendor_id, sku, list_price, cost, name="Firewall 600"):
    connection = await asyncpg.connect(admin_url)
    try:
        price_list = await connection.fetchval(
            "SELECT id FROM price_lists WHERE workspace_id = $1 AND vendor_id = $2",
            workspace_id,
            vendor_id,
        )
        await connection.execute(
            "INSERT INTO price_items (workspace_id, id, vendor_id, price_list_id, external_id,"
            " sku, name, currency, list_price, partner_cost)"
            " VALUES ($1, $2, $3, $4, $5, $5, $6, 'EUR', $7, $8)",
            workspace_id,
            new_id(),
            vendor_id,
            price_list,
            sku,
            name,
            list_price,
            cost,
        )
    finally:
        await connection.close()


async def _reseller_with_sources(api, count):
    owner = await api.signup()
    sources = []
    for number in range(count):
        vendor = await api.new_vendor("distributor" if number else "vendor")
        link = await api.link(owner, vendor)
        await seed_vendor_content(
            api.admin_url, owner.workspace_id, vendor, link["id"], f"s{number}"
        )
        sources.append(vendor)
    return owner, sources


async def test_the_same_sku_from_every_source_best_margin_first(api, http):
    owner, (vendor, cheap, dear) = await _reseller_with_sources(api, 3)
    await _offer(api.admin_url, owner.workspace_id, vendor, "FW-600", "5490.00", "4500.00")
    await _offer(api.admin_url, owner.workspace_id, cheap, "FW-600", "5490.00", "4282.20")
    await _offer(api.admin_url, owner.workspace_id, dear, "FW-600", "5490.00", "4900.00")
    compared = await http.get(
        "/v1/price-items/compare", params={"sku": "FW-600"}, headers=owner.headers
    )
    assert compared.status_code == 200
    items = compared.json()["items"]
    assert [item["vendor_id"] for item in items] == [str(cheap), str(vendor), str(dear)]
    assert items[0]["margin"] == "1207.8000"
    assert items[0]["margin_pct"] == "22.0000"
    assert items[0]["vendor_kind"] == "distributor"
    assert items[0]["vendor_name"]
    missing = await http.get("/v1/price-items/compare", headers=owner.headers)
    assert_problem(missing, 422, "validation-error")


async def test_price_items_filter_by_vendor_sku_and_search_and_page(api, http):
    owner, (vendor, other) = await _reseller_with_sources(api, 2)
    for number in range(5):
        await _offer(
            api.admin_url, owner.workspace_id, vendor, f"SW-{number}", "100", "70", "Switch 24"
        )
    await _offer(api.admin_url, owner.workspace_id, other, "AP-6E", "449", "350", "Access point")
    by_vendor = await http.get(
        "/v1/price-items", params={"vendor_id": str(other)}, headers=owner.headers
    )
    assert {item["sku"] for item in by_vendor.json()["items"]} == {"AP-6E", "SKU-s1"}
    searched = await http.get("/v1/price-items", params={"q": "switch"}, headers=owner.headers)
    assert {item["sku"] for item in searched.json()["items"]} == {f"SW-{n}" for n in range(5)}
    exact = await http.get("/v1/price-items", params={"sku": "SW-3"}, headers=owner.headers)
    assert [item["margin"] for item in exact.json()["items"]] == ["30.0000"]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await http.get("/v1/price-items", params=params, headers=owner.headers)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5 + 1 + 2  # five switches, the AP, one seeded per source
    foreign = await http.get(
        "/v1/price-items", params={"cursor": cursor or "bad"}, headers=owner.headers
    )
    assert_problem(foreign, 400, "bad-cursor")


async def test_campaigns_and_assets_list_with_their_fields(api, http):
    owner, (vendor,) = await _reseller_with_sources(api, 1)
    campaigns = (await http.get("/v1/campaigns", headers=owner.headers)).json()["items"]
    assert [c["external_id"] for c in campaigns] == ["C-s0"]
    assert campaigns[0]["vendor_id"] == str(vendor)
    assert campaigns[0]["channels"] == []
    assets = (await http.get("/v1/assets", params={"q": "datasheet"}, headers=owner.headers)).json()
    assert [a["url"] for a in assets["items"]] == ["https://vendor.example/datasheet.pdf"]
    none = await http.get("/v1/assets", params={"kind": "video"}, headers=owner.headers)
    assert none.json()["items"] == []
    assert (await http.get("/v1/campaigns")).status_code == 401


async def test_content_needs_its_own_scope_on_api_keys(api, http):
    owner, _ = await _reseller_with_sources(api, 1)
    leads_only = await api.api_key(owner, ["leads:read"])
    refused = await http.get("/v1/price-items", headers={"Authorization": f"Bearer {leads_only}"})
    assert "content:read" in assert_problem(refused, 403, "forbidden")["detail"]
    content = await api.api_key(owner, ["content:read"])
    allowed = await http.get("/v1/price-items", headers={"Authorization": f"Bearer {content}"})
    assert [item["sku"] for item in allowed.json()["items"]] == ["SKU-s0"]
