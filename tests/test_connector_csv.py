"""csv_price_list against the simulator's distributor (and against files it serves itself)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
import respx

from pane.connectors.base import CheckFailed, CredentialsRejected
from pane.connectors.csv_price_list import CsvPriceList
from pane.connectors.records import Stream
from pane.connectors.registry import connectors
from pane.demo.manifests import demo_link
from pane.demo.simulator import Simulator

NORTHWIND = demo_link("northwind", "http://vendors.test")["config"]


def _connector(client: httpx.AsyncClient, config: dict, token: str | None) -> CsvPriceList:
    return CsvPriceList(
        config=CsvPriceList.config_model.model_validate(config),
        credentials=CsvPriceList.credentials_model.model_validate({"token": token}),
        client=client,
    )


async def _read_all(connector: CsvPriceList, cursor: str | None = None) -> list:
    return [page async for page in connector.read(Stream.PRICE_LISTS, cursor)]


@pytest.fixture
async def northwind():
    simulator = Simulator(leads_per_vendor=1)
    transport = httpx.ASGITransport(app=simulator.app)
    async with httpx.AsyncClient(transport=transport) as client:
        yield simulator, client


def test_the_connector_is_registered_by_entry_point():
    assert connectors()["csv_price_list"] is CsvPriceList
    described = CsvPriceList.describe()
    assert described["streams"] == ["price_lists"]
    assert "columns" in described["config_schema"]["properties"]
    token_schema = described["credentials_schema"]["properties"]["token"]["anyOf"][0]
    assert token_schema["format"] == "password"  # a SPA renders it as a secret field


async def test_reads_the_distributor_list_with_decimal_commas(northwind):
    _, client = northwind
    connector = _connector(client, NORTHWIND, "northwind-demo-token")
    await connector.check()
    pages = await _read_all(connector)
    assert len(pages) == 1
    items = {item.sku: item for item in pages[0].records}
    assert items["FW-600"].list_price == Decimal("5490.00")
    assert items["FW-600"].partner_cost == Decimal("4282.20")
    assert items["FW-600"].currency == "EUR"
    assert str(items["FW-600"].valid_from) == "2026-01-01"
    assert items["FW-600"].raw["Bezeichnung"] == "Firewall 600 appliance"
    assert pages[0].failures == []
    assert pages[0].cursor is not None
    assert pages[0].cursor.startswith("sha256:")
    # The same file again: nothing to read.
    assert await _read_all(connector, pages[0].cursor) == []


async def test_a_wrong_token_is_a_credentials_rejection(northwind):
    simulator, client = northwind
    with pytest.raises(CredentialsRejected, match="403"):
        await _connector(client, NORTHWIND, "wrong").check()
    simulator.revoke("northwind")
    with pytest.raises(CredentialsRejected):
        await _read_all(_connector(client, NORTHWIND, "northwind-demo-token"))


async def test_a_column_the_file_does_not_have_fails_the_check(northwind):
    _, client = northwind
    config = {**NORTHWIND, "columns": {**NORTHWIND["columns"], "msrp": "Listenpreis"}}
    with pytest.raises(CheckFailed, match="no column Listenpreis"):
        await _connector(client, config, "northwind-demo-token").check()


@respx.mock
async def test_bad_rows_are_kept_with_their_reason_and_the_rest_loads():
    body = (
        "sku,name,price,cost,currency\n"
        'A-1,Good,"1,200.50",900.00,USD\n'
        "A-2,Bad price,twelve,5.00,USD\n"
        ",No sku,1.00,0.50,USD\n"
        "A-3,No currency,2.00,1.00,\n"
        "A-4,Also good,3.00,2.00,USD\n"
    )
    respx.get("https://lists.example.com/p.csv").respond(200, text=body, headers={"ETag": '"v7"'})
    config = {
        "url": "https://lists.example.com/p.csv",
        "thousands_separator": ",",
        "columns": {
            "sku": "sku",
            "name": "name",
            "list_price": "price",
            "partner_cost": "cost",
            "currency": "currency",
        },
    }
    async with httpx.AsyncClient() as client:
        pages = await _read_all(_connector(client, config, None))
    [page] = pages
    assert [item.sku for item in page.records] == ["A-1", "A-4"]
    assert page.records[0].list_price == Decimal("1200.50")
    reasons = [failure.reason for failure in page.failures]
    assert len(reasons) == 3
    assert "price: 'twelve' is not an amount" in reasons[0]
    assert "sku" in reasons[1]
    assert "currency" in reasons[2]
    assert page.cursor == 'etag:"v7"'


@respx.mock
async def test_an_unchanged_file_is_not_downloaded_again():
    route = respx.get("https://lists.example.com/p.csv")
    route.side_effect = lambda request: httpx.Response(
        304 if request.headers.get("if-none-match") == '"v7"' else 200,
        text="sku,currency\nA-1,EUR\n",
        headers={"ETag": '"v7"'},
    )
    config = {
        "url": "https://lists.example.com/p.csv",
        "columns": {"sku": "sku", "currency": "currency"},
    }
    async with httpx.AsyncClient() as client:
        connector = _connector(client, config, None)
        first = await _read_all(connector)
        again = await _read_all(connector, first[-1].cursor)
    assert [item.sku for item in first[-1].records] == ["A-1"]
    assert again == []
    assert route.calls[-1].request.headers["if-none-match"] == '"v7"'


@respx.mock
async def test_long_files_come_in_pages_and_only_the_last_advances_the_cursor():
    rows = "".join(f"S-{n},{n}.00,EUR\n" for n in range(2500))
    respx.get("https://lists.example.com/big.csv").respond(200, text="sku,price,currency\n" + rows)
    config = {
        "url": "https://lists.example.com/big.csv",
        "columns": {"sku": "sku", "list_price": "price", "currency": "currency"},
    }
    async with httpx.AsyncClient() as client:
        pages = await _read_all(_connector(client, config, None), "sha256:previous")
    assert [len(page.records) for page in pages] == [1000, 1000, 500]
    assert [page.cursor for page in pages[:-1]] == ["sha256:previous", "sha256:previous"]
    assert pages[-1].cursor.startswith("sha256:")
    assert pages[-1].cursor != "sha256:previous"


async def test_the_link_form_schema_is_served_to_signed_in_callers(http, api):
    assert (await http.get("/v1/connectors")).status_code == 401
    owner = await api.signup()
    listed = await http.get("/v1/connectors", headers=owner.headers)
    assert listed.status_code == 200
    csv_connector = next(i for i in listed.json()["items"] if i["name"] == "csv_price_list")
    assert csv_connector["config_schema"]["required"] == ["url", "columns"]
    assert csv_connector["streams"] == ["price_lists"]
    assert listed.json()["next_cursor"] is None
    by_name = {item["name"]: item for item in listed.json()["items"]}
    assert set(by_name) == {"csv_price_list", "generic_rest", "salesforce"}
    assert "manifest" in by_name["generic_rest"]["config_schema"]["required"]
    assert by_name["salesforce"]["actions"] == ["register_deal"]
    assert "instance_url" in by_name["salesforce"]["config_schema"]["properties"]


class _BrokenEntryPoint:
    name = "vendor_x"
    value = "vendor_x_plugin:Connector"

    def load(self):
        raise ImportError("No module named 'vendor_x_plugin'")


async def test_a_broken_connector_plugin_stops_pane_from_starting(monkeypatch, servers):
    from asgi_lifespan import LifespanManager

    from pane.app import create_app
    from pane.connectors import registry
    from tests.conftest import make_settings

    monkeypatch.setattr(registry, "entry_points", lambda group: [_BrokenEntryPoint()])
    registry.connectors.cache_clear()
    try:
        with pytest.raises(registry.ConnectorLoadError, match=r"vendor_x.*failed to load"):
            async with LifespanManager(create_app(make_settings(servers))):
                pass
    finally:
        monkeypatch.undo()
        registry.connectors.cache_clear()
    assert "csv_price_list" in registry.connectors()
