"""The vendor simulator behaves like the partner APIs connectors will meet."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from asgi_lifespan import LifespanManager

from pane.demo.simulator import Simulator


async def _client(simulator: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=simulator.app), base_url="http://vendors.test"
    )


@pytest.fixture
def simulator() -> Simulator:
    return Simulator(leads_per_vendor=230)


async def _acme_token(client: httpx.AsyncClient, secret: str = "acme-demo-secret") -> str:
    response = await client.post(
        "/acme/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "pane-demo",
            "client_secret": secret,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _acme_walk(client: httpx.AsyncClient, token: str, **params: str) -> list[dict]:
    seen: list[dict] = []
    cursor = None
    while True:
        query = {"limit": "100", **params, **({"cursor": cursor} if cursor else {})}
        page = await client.get(
            "/acme/api/v2/leads", params=query, headers={"Authorization": f"Bearer {token}"}
        )
        assert page.status_code == 200, page.text
        seen += page.json()["data"]
        cursor = page.json()["nextCursor"]
        if cursor is None:
            return seen


async def test_acme_oauth_and_cursor_pages_cover_every_lead_once(simulator):
    async with await _client(simulator) as client:
        refused = await client.post(
            "/acme/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "pane-demo",
                "client_secret": "no",
            },
        )
        assert refused.status_code == 401
        assert (await client.get("/acme/api/v2/leads")).status_code == 401
        leads = await _acme_walk(client, await _acme_token(client))
    ids = [lead["leadId"] for lead in leads]
    assert len(ids) == 230 == len(set(ids))
    assert {"firstName", "emailAddress", "companyName", "status", "updatedAt"} <= set(leads[0])
    assert leads[0]["status"] in {"Open", "Qualified", "Unqualified", "Closed"}
    stamps = [lead["updatedAt"] for lead in leads]
    assert stamps == sorted(stamps)


async def test_acme_incremental_read_returns_only_what_changed_including_deletions(simulator):
    async with await _client(simulator) as client:
        token = await _acme_token(client)
        everything = await _acme_walk(client, token)
        high_water = everything[-1]["updatedAt"]
        simulator.advance(new=5, changed=3, deleted=2)
        changed = await _acme_walk(client, token, updatedSince=high_water)
    # the overlap (>=) re-reads the last record; the rest is exactly what moved
    fresh = [lead for lead in changed if lead["updatedAt"] > high_water]
    assert len(fresh) == 5 + 3 + 2
    assert sum(lead["isDeleted"] for lead in fresh) == 2
    assert changed[0]["leadId"] == everything[-1]["leadId"]


async def test_globex_api_key_and_numbered_pages_with_european_dates(simulator):
    async with await _client(simulator) as client:
        assert (await client.get("/globex/v1/leads")).status_code == 403
        headers = {"X-Api-Key": "globex-demo-key"}
        first = (
            await client.get("/globex/v1/leads", params={"per_page": 50}, headers=headers)
        ).json()
        assert first["total_pages"] == 5
        pages = [first]
        for number in range(2, first["total_pages"] + 1):
            reply = await client.get(
                "/globex/v1/leads", params={"page": number, "per_page": 50}, headers=headers
            )
            pages.append(reply.json())
        refs = [lead["lead_ref"] for page in pages for lead in page["results"]]
        assert len(refs) == 230 == len(set(refs))
        modified = datetime.strptime(first["results"][0]["modified"], "%d/%m/%Y %H:%M")
        assert modified.year == 2026
        bad = await client.get(
            "/globex/v1/leads", params={"modified_after": "2026-01-05"}, headers=headers
        )
        assert bad.status_code == 400


async def test_initech_link_headers_chain_every_page(simulator):
    async with await _client(simulator) as client:
        auth = ("pane-demo", "initech-demo-password")
        assert (await client.get("/initech/partner/leads")).status_code == 401
        url: str | None = "/initech/partner/leads?limit=40"
        uids: list[str] = []
        while url:
            reply = await client.get(url, auth=auth)
            assert reply.status_code == 200
            uids += [lead["uid"] for lead in reply.json()]
            url = reply.links.get("next", {}).get("url")
        assert len(uids) == 230 == len(set(uids))
        since = int((datetime.now(UTC) + timedelta(days=400)).timestamp())
        assert (await client.get(f"/initech/partner/leads?since={since}", auth=auth)).json() == []


async def test_initech_is_flaky_on_request(simulator):
    flaky = Simulator(leads_per_vendor=10, initech_throttle_every=2, initech_fail_every=3)
    async with await _client(flaky) as client:
        auth = ("pane-demo", "initech-demo-password")
        statuses = [(await client.get("/initech/partner/leads", auth=auth)) for _ in range(6)]
    assert [reply.status_code for reply in statuses] == [200, 429, 500, 429, 200, 429]
    assert statuses[1].headers["retry-after"] == "1"


async def test_northwind_price_list_is_semicolon_csv_with_decimal_commas(simulator):
    async with await _client(simulator) as client:
        assert (await client.get("/northwind/pricelist.csv")).status_code == 403
        reply = await client.get(
            "/northwind/pricelist.csv", params={"token": "northwind-demo-token"}
        )
    assert reply.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.text), delimiter=";"))
    firewall = next(row for row in rows if row["Artikelnummer"] == "FW-600")
    assert firewall["UVP"] == "5.490,00"
    assert firewall["Haendlerpreis"] == "4.282,20"
    assert firewall["Waehrung"] == "EUR"


async def test_revoked_credentials_are_refused(simulator):
    async with await _client(simulator) as client:
        token = await _acme_token(client)
        simulator.revoke("acme")
        stale = await client.get("/acme/api/v2/leads", headers={"Authorization": f"Bearer {token}"})
        assert stale.status_code == 401
        refused = await client.post(
            "/acme/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "pane-demo",
                "client_secret": "acme-demo-secret",
            },
        )
        assert refused.status_code == 401
        simulator.revoke("globex")
        assert (
            await client.get("/globex/v1/leads", headers={"X-Api-Key": "globex-demo-key"})
        ).status_code == 403


async def test_same_seed_same_vendors_and_live_mode_keeps_producing_leads():
    assert [x.email for x in Simulator(seed=3).data["acme"].leads] == [
        x.email for x in Simulator(seed=3).data["acme"].leads
    ]
    live = Simulator(leads_per_vendor=5, live_interval=0.05)
    async with LifespanManager(live.app):
        await asyncio.sleep(0.3)
    assert len(live.data["globex"].leads) > 5


async def test_acme_keyset_cursor_skips_nothing_when_leads_move_mid_read(simulator):
    async with await _client(simulator) as client:
        token = await _acme_token(client)
        headers = {"Authorization": f"Bearer {token}"}
        first = (
            await client.get("/acme/api/v2/leads", params={"limit": 50}, headers=headers)
        ).json()
        # Between two pages the vendor moves leads on, some already read, some not yet.
        simulator.data["acme"].change_leads(40)
        seen = [lead["leadId"] for lead in first["data"]]
        cursor = first["nextCursor"]
        while cursor:
            page = await client.get(
                "/acme/api/v2/leads", params={"limit": 50, "cursor": cursor}, headers=headers
            )
            seen += [lead["leadId"] for lead in page.json()["data"]]
            cursor = page.json()["nextCursor"]
        bad = await client.get("/acme/api/v2/leads", params={"cursor": "%%%"}, headers=headers)
    assert set(seen) == {lead.id for lead in simulator.data["acme"].leads}
    assert bad.status_code == 400


async def test_acme_price_list_and_collateral(simulator):
    async with await _client(simulator) as client:
        headers = {"Authorization": f"Bearer {await _acme_token(client)}"}
        assert (await client.get("/acme/api/v2/price-list")).status_code == 401
        usd = (await client.get("/acme/api/v2/price-list", headers=headers)).json()
        eur = await client.get(
            "/acme/api/v2/price-list", params={"currency": "EUR", "limit": 4}, headers=headers
        )
        rest = await client.get(
            "/acme/api/v2/price-list",
            params={"currency": "EUR", "limit": 4, "cursor": eur.json()["nextCursor"]},
            headers=headers,
        )
        gbp = await client.get(
            "/acme/api/v2/price-list", params={"currency": "GBP"}, headers=headers
        )
        assets = (await client.get("/acme/api/v2/assets", headers=headers)).json()
    firewall = next(item for item in usd["data"] if item["sku"] == "FW-600")
    assert firewall["listPrice"] == {"amount": 5929.2, "currency": "USD"}
    assert firewall["partnerCost"]["amount"] == 4269.02  # 28% partner discount
    assert usd["nextCursor"] is None
    assert [len(eur.json()["data"]), len(rest.json()["data"])] == [4, 2]
    assert rest.json()["nextCursor"] is None
    assert eur.json()["data"][1]["listPrice"] == {"amount": 5490.0, "currency": "EUR"}
    assert gbp.status_code == 400
    assert len(assets["data"]) == 21
    assert {a["assetType"] for a in assets["data"]} == {"DATASHEET", "PRESENTATION", "VIDEO"}
    assert {a["locale"] for a in assets["data"]} == {"en-US", "de-DE"}
    assert assets["data"][0]["url"].startswith("https://cdn.acme.example/collateral/fw-200-")


async def test_globex_campaigns_and_assets_in_its_own_style(simulator):
    async with await _client(simulator) as client:
        assert (await client.get("/globex/v1/campaigns")).status_code == 403
        headers = {"X-Api-Key": "globex-demo-key"}
        campaigns = (await client.get("/globex/v1/campaigns", headers=headers)).json()
        assets = [
            (
                await client.get(
                    "/globex/v1/assets", params={"page": page, "per_page": 10}, headers=headers
                )
            ).json()
            for page in (1, 2, 3)
        ]
    assert campaigns["total_pages"] == 1
    campaign = campaigns["results"][0]
    assert campaign["campaign_ref"] == simulator.data["globex"].campaigns[0].id
    assert campaign["campaign_type"].isupper()
    assert campaign["state"] in {"live", "planned", "ended"}
    assert datetime.strptime(campaign["start_date"], "%d/%m/%Y").year == 2026
    assert [page["total_pages"] for page in assets] == [3, 3, 3]
    refs = [asset["asset_ref"] for page in assets for asset in page["results"]]
    assert len(refs) == 21 == len(set(refs))
    kinds = {asset["asset_type"] for page in assets for asset in page["results"]}
    assert kinds == {"Data sheet", "Slide deck", "Video"}


async def test_initech_campaigns_are_nested_and_linked(simulator):
    async with await _client(simulator) as client:
        auth = ("pane-demo", "initech-demo-password")
        assert (await client.get("/initech/partner/campaigns")).status_code == 401
        first = await client.get("/initech/partner/campaigns?limit=3", auth=auth)
        second = await client.get(first.links["next"]["url"], auth=auth)
    assert len(first.json()) == 3
    assert len(second.json()) == 1
    assert "next" not in second.links
    campaign = first.json()[0]
    assert campaign["meta"]["title"] == simulator.data["initech"].campaigns[0].name
    assert isinstance(campaign["window"]["from"], int)
    assert campaign["products"][0]["sku"] == simulator.data["initech"].campaigns[0].products[0]


def test_the_change_order_is_kept_without_sorting_per_request():
    big = Simulator(leads_per_vendor=5, leads={"globex": 2000})
    data = big.data["globex"]
    assert len(data.leads) == 2000
    assert len(big.data["acme"].leads) == 5
    with pytest.raises(ValueError, match="no simulated vendor umbrella"):
        Simulator(leads={"umbrella": 1})
    data.change_leads(30)
    data.delete_leads(5)
    data.add_leads(3)
    ordered = data.by_change()
    keys = [(lead.updated_at, lead.id) for lead in ordered]
    assert keys == sorted(keys)
    assert len(ordered) == 2003
    # the latest changes: 5 withdrawn leads, then 3 new ones
    assert [lead.deleted for lead in ordered[-8:]] == [True] * 5 + [False] * 3
    since = ordered[1500].updated_at
    assert data.changed_since(since) == ordered[1500:]
    assert data.first_changed_at_or_after(None) == 0
    assert data.first_after(ordered[10].updated_at, ordered[10].id) == 11
