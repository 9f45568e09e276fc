"""generic_rest: the simulated vendors read end to end through their manifests, every
pagination style and transform, and what happens when vendors or manifests go wrong."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from pydantic import ValidationError

from pane.connectors.base import AuthContext, CheckFailed, ConnectorError, CredentialsRejected
from pane.connectors.csv_price_list import CsvPriceList
from pane.connectors.generic_rest import GenericRest, GenericRestConfig, PaginationLoop
from pane.connectors.generic_rest.manifest import StreamSpec
from pane.connectors.generic_rest.mapping import (
    Mapper,
    format_datetime,
    parse_date,
    parse_datetime,
    parse_money,
)
from pane.connectors.http import build_client
from pane.connectors.records import LeadRecord, Page, RecordFailure, Stream
from pane.demo.manifests import demo_link, demo_links, load
from pane.demo.simulator import Simulator
from pane.demo.simulator.store import price_list
from pane.demo.simulator.vendors import ACME_STATUS, GLOBEX_STATUS, INITECH_STAGE

SIMULATOR = "http://vendors.test"
VENDOR = "https://api.vendor.example"


class Saved:
    """A stand-in for the engine's save_credentials."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, credentials: dict[str, Any]) -> None:
        self.calls.append(credentials)


def _context(redis: Any = None, saved: Saved | None = None) -> AuthContext:
    return AuthContext(
        redis=redis, holder=f"link-{uuid.uuid4()}", save_credentials=saved or Saved()
    )


def _link(slug: str, credentials: dict[str, Any] | None = None, **changes: Any) -> tuple[Any, Any]:
    """A simulated vendor's link config and credentials, with manifest changes applied as
    ``streams__leads__page_size=40``-style keywords."""
    link = demo_link(slug, SIMULATOR)
    config = copy.deepcopy(link["config"])
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        target = config["manifest"]
        for part in parents:
            target = target[part]
        target[last] = value
    return (
        GenericRest.config_model.model_validate(config),
        GenericRest.credentials_model.model_validate(credentials or link["credentials"]),
    )


def _connector(
    simulator: Simulator, config: Any, credentials: Any, context: AuthContext
) -> GenericRest:
    client = build_client(
        allow_private=True,
        transport=httpx.ASGITransport(app=simulator.app),
        initial_wait=0.01,
        auth=GenericRest.authenticate(config, credentials, context),
    )
    return GenericRest(config=config, credentials=credentials, client=client)


async def _read(connector: GenericRest, stream: Stream, cursor: str | None = None) -> list[Page]:
    return [page async for page in connector.read(stream, cursor)]


def _records(pages: list[Page]) -> list[Any]:
    return [record for page in pages for record in page.records]


def _acme(simulator: Simulator, redis: Any, **changes: Any) -> GenericRest:
    # A secret of this test's own: its own token cache key in the shared Redis.
    secret = f"acme-{uuid.uuid4()}"
    simulator.acme.client_secret = secret
    config, credentials = _link(
        "acme", {"client_id": "pane-demo", "client_secret": secret}, **changes
    )
    return _connector(simulator, config, credentials, _context(redis))


def _simple(simulator: Simulator, slug: str, **changes: Any) -> GenericRest:
    config, credentials = _link(slug, **changes)
    return _connector(simulator, config, credentials, _context())


# --- the link form ---------------------------------------------------------------------------


def test_the_link_form_schema_is_useful_and_the_stored_config_round_trips():
    described = GenericRest.describe()
    assert described["name"] == "generic_rest"
    assert described["streams"] == sorted(stream.value for stream in Stream)
    schema = described["config_schema"]
    json.dumps(schema)  # a SPA gets it as JSON
    assert schema["required"] == ["manifest"]
    assert {"Manifest", "StreamSpec", "CursorTokenPagination", "MoneyField"} <= set(schema["$defs"])
    stream = schema["$defs"]["StreamSpec"]["properties"]
    assert "leads: external_id" in stream["fields"]["description"]
    credentials = described["credentials_schema"]["properties"]
    assert credentials["client_secret"]["anyOf"][0]["format"] == "password"
    for slug in ("acme", "globex", "initech"):
        config, _ = _link(slug)
        stored = config.model_dump(mode="json")  # what the link service keeps
        assert GenericRestConfig.model_validate(stored) == config


def test_demo_links_fit_their_connectors():
    links = demo_links("http://127.0.0.1:8900/")
    assert set(links) == {"acme", "globex", "initech", "northwind"}
    assert links["acme"]["config"]["base_url"] == "http://127.0.0.1:8900/acme"
    assert links["acme"]["credentials"] == {
        "client_id": "pane-demo",
        "client_secret": "acme-demo-secret",
    }
    assert links["globex"]["credentials"] == {"api_key": "globex-demo-key"}
    for slug in ("acme", "globex", "initech"):
        assert links[slug]["connector"] == "generic_rest"
        config = GenericRest.config_model.model_validate(links[slug]["config"])
        credentials = GenericRest.credentials_model.model_validate(links[slug]["credentials"])
        assert GenericRest.missing_credentials(config, credentials) == []
    assert links["northwind"]["connector"] == "csv_price_list"
    CsvPriceList.config_model.model_validate(links["northwind"]["config"])
    with pytest.raises(KeyError, match="no manifest for 'umbrella'"):
        load("umbrella")


# --- the simulated vendors end to end --------------------------------------------------------


async def test_acme_reads_every_stream_normalized(redis):
    simulator = Simulator(leads_per_vendor=1234)
    acme = _acme(simulator, redis)
    data = simulator.data["acme"]
    async with acme.client:
        await acme.check()
        pages = await _read(acme, Stream.LEADS)
        campaigns = _records(await _read(acme, Stream.CAMPAIGNS))
        prices = _records(await _read(acme, Stream.PRICE_LISTS))
        assets = _records(await _read(acme, Stream.ASSETS))
    assert [len(page.records) for page in pages] == [500, 500, 234]
    assert all(page.failures == [] for page in pages)
    leads = {lead.external_id: lead for lead in _records(pages)}
    assert len(leads) == 1234
    third = data.leads[2]  # every third lead came from a campaign
    lead = leads[third.id]
    assert isinstance(lead, LeadRecord)
    assert (lead.first_name, lead.last_name, lead.email) == (
        third.first_name,
        third.last_name,
        third.email,
    )
    assert (lead.company, lead.title, lead.country, lead.phone) == (
        third.company,
        third.title,
        third.country,
        third.phone,
    )
    assert lead.vendor_status == ACME_STATUS[third.status]
    assert lead.score == third.score
    assert lead.campaign_ref == third.campaign is not None
    assert lead.source == "Acme partner portal"
    assert lead.updated_at == third.updated_at
    assert lead.vendor_created_at == third.created_at
    assert lead.deleted is False
    assert lead.raw["leadId"] == third.id
    # The cursor after each page is the latest change read so far.
    assert pages[-1].cursor == max(x.updated_at for x in data.leads).isoformat()
    assert pages[0].cursor == data.by_change()[499].updated_at.isoformat()

    assert [c.external_id for c in campaigns] == [c.id for c in data.campaigns]
    assert campaigns[0].name == data.campaigns[0].name
    assert campaigns[0].starts_on == data.campaigns[0].starts.date()
    assert campaigns[0].products == data.campaigns[0].products

    usd = {line.sku: line for line in price_list("USD")}
    assert {item.sku for item in prices} == set(usd)
    firewall = next(item for item in prices if item.sku == "FW-600")
    assert firewall.currency == "USD"
    assert firewall.list_price == usd["FW-600"].list_price == Decimal("5929.20")
    assert firewall.partner_cost == usd["FW-600"].partner_cost
    assert firewall.valid_from == date(2026, 1, 1)

    assert len(assets) == len(data.assets)
    assert {asset.kind for asset in assets} == {"datasheet", "presentation", "video"}
    assert {asset.language for asset in assets} == {"en", "de"}
    assert assets[0].url.startswith("https://cdn.acme.example/collateral/")
    assert assets[0].product == data.assets[0].product


async def test_acme_price_list_in_euros(redis):
    simulator = Simulator(leads_per_vendor=1)
    acme = _acme(simulator, redis, streams__price_lists__params={"currency": "EUR"})
    async with acme.client:
        prices = {item.sku: item for item in _records(await _read(acme, Stream.PRICE_LISTS))}
    assert prices["FW-600"].currency == "EUR"
    assert prices["FW-600"].list_price == Decimal("5490.00")
    assert prices["FW-600"].partner_cost == Decimal("3952.80")  # 28% off for firewalls


async def test_acme_incremental_read_brings_new_changed_and_deleted_leads(redis):
    simulator = Simulator(leads_per_vendor=300)
    acme = _acme(simulator, redis)
    async with acme.client:
        first = await _read(acme, Stream.LEADS)
        cursor = first[-1].cursor
        assert cursor is not None
        simulator.advance(new=5, changed=3, deleted=2)
        again = await _read(acme, Stream.LEADS, cursor)
    leads = _records(again)
    high_water = datetime.fromisoformat(cursor)
    fresh = [lead for lead in leads if lead.updated_at > high_water]
    assert len(fresh) == 5 + 3 + 2
    assert len(leads) == len(fresh) + 1  # >=: the last lead read before comes again
    tombstones = {lead.external_id for lead in fresh if lead.deleted}
    assert tombstones == {x.id for x in simulator.data["acme"].leads if x.deleted}
    assert len(tombstones) == 2
    assert again[-1].cursor == max(x.updated_at for x in simulator.data["acme"].leads).isoformat()


async def test_globex_reads_european_dates_and_numbered_pages():
    simulator = Simulator(leads_per_vendor=1100)
    globex = _simple(simulator, "globex")
    data = simulator.data["globex"]
    async with globex.client:
        await globex.check()
        pages = await _read(globex, Stream.LEADS)
        campaigns = _records(await _read(globex, Stream.CAMPAIGNS))
        assets = _records(await _read(globex, Stream.ASSETS))
    assert [len(page.records) for page in pages] == [500, 500, 100]
    leads = {lead.external_id: lead for lead in _records(pages)}
    assert len(leads) == 1100
    source = data.leads[41]
    lead = leads[source.id]
    assert (lead.first_name, lead.last_name, lead.company) == (
        source.first_name,
        source.last_name,
        source.company,
    )
    assert lead.vendor_status == GLOBEX_STATUS[source.status]
    assert lead.updated_at == source.updated_at.replace(second=0, microsecond=0)
    assert lead.updated_at.tzinfo is not None

    by_id = {c.id: c for c in data.campaigns}
    assert {c.external_id for c in campaigns} == set(by_id)
    campaign = campaigns[0]
    assert campaign.kind == by_id[campaign.external_id].kind  # WEBINAR -> webinar
    assert campaign.status in {"active", "planned", "ended"}
    assert campaign.starts_on == by_id[campaign.external_id].starts.date()
    assert campaign.ends_on == by_id[campaign.external_id].ends.date()

    assert len(assets) == len(data.assets)
    kinds = {asset.external_id: asset.kind for asset in assets}
    assert kinds == {asset.id: asset.kind for asset in data.assets}
    assert {asset.language for asset in assets} == {"en", "de"}


async def test_globex_incremental_read_with_minute_cursors():
    simulator = Simulator(leads_per_vendor=400)
    globex = _simple(simulator, "globex")
    async with globex.client:
        cursor = (await _read(globex, Stream.LEADS))[-1].cursor
        simulator.advance(new=4, changed=2, deleted=3)
        leads = _records(await _read(globex, Stream.LEADS, cursor))
    data = simulator.data["globex"]
    moved = {x.id for x in data.by_change()[-9:]}
    assert moved <= {lead.external_id for lead in leads}
    assert {lead.external_id for lead in leads if lead.deleted} == {
        x.id for x in data.leads if x.deleted
    }


async def test_initech_nested_epoch_records_and_incremental_reads():
    simulator = Simulator(leads_per_vendor=730)
    initech = _simple(simulator, "initech")
    data = simulator.data["initech"]
    async with initech.client:
        await initech.check()
        pages = await _read(initech, Stream.LEADS)
        campaigns = _records(await _read(initech, Stream.CAMPAIGNS))
        simulator.advance(new=2, changed=2, deleted=1)
        again = _records(await _read(initech, Stream.LEADS, pages[-1].cursor))
    assert [len(page.records) for page in pages] == [500, 230]
    leads = {lead.external_id: lead for lead in _records(pages)}
    source = data.leads[99]
    lead = leads[source.id]
    assert (lead.first_name, lead.last_name, lead.title) == (
        source.first_name,
        source.last_name,
        source.title,
    )
    assert (lead.company, lead.country) == (source.company, source.country)
    assert lead.vendor_status == INITECH_STAGE[source.status]
    assert lead.updated_at == source.updated_at.replace(microsecond=0)
    assert campaigns[0].products == data.campaigns[0].products  # products.*.sku
    assert campaigns[0].starts_on == data.campaigns[0].starts.date()
    assert {x.id for x in data.by_change()[-5:]} <= {lead.external_id for lead in again}
    assert [lead.external_id for lead in again if lead.deleted] == [
        x.id for x in data.leads if x.deleted
    ]


async def test_a_flaky_vendor_is_read_to_the_end():
    simulator = Simulator(leads_per_vendor=150, initech_throttle_every=3, initech_fail_every=4)
    initech = _simple(simulator, "initech", streams__leads__page_size=40)
    async with initech.client:
        leads = _records(await _read(initech, Stream.LEADS))
    assert len(leads) == 150 == len({lead.external_id for lead in leads})
    assert simulator.initech.requests > 5  # the retries really happened


async def test_offset_pages_stop_at_the_short_page():
    simulator = Simulator(leads_per_vendor=230)
    initech = _simple(
        simulator,
        "initech",
        streams__leads__page_size=40,
        streams__leads__pagination={"type": "offset", "param": "offset"},
    )
    async with initech.client:
        pages = await _read(initech, Stream.LEADS)
    assert [len(page.records) for page in pages] == [40] * 5 + [30]
    assert len({lead.external_id for lead in _records(pages)}) == 230


async def test_a_stream_the_manifest_does_not_declare_reads_empty():
    simulator = Simulator(leads_per_vendor=1)
    globex = _simple(simulator, "globex")
    async with globex.client:
        assert await _read(globex, Stream.DEALS) == []
        assert globex.declared_streams == [Stream.LEADS, Stream.CAMPAIGNS, Stream.ASSETS]


# --- credentials -----------------------------------------------------------------------------


async def test_revoked_credentials_are_rejected_by_check_and_read(redis):
    simulator = Simulator(leads_per_vendor=3)
    acme = _acme(simulator, redis)
    globex = _simple(simulator, "globex")
    initech = _simple(simulator, "initech")
    async with acme.client, globex.client, initech.client:
        await acme.check()
        said = {
            "acme": "invalid_client",
            "globex": "403 Forbidden: API key missing or not valid",
            "initech": "401 Unauthorized: authentication required",
        }
        for slug, connector in (("acme", acme), ("globex", globex), ("initech", initech)):
            simulator.revoke(slug)
            with pytest.raises(CredentialsRejected, match=said[slug]):
                await connector.check()
            with pytest.raises(CredentialsRejected, match=said[slug]):
                await _read(connector, Stream.LEADS)


def test_a_missing_credential_is_named():
    config, credentials = _link("initech", {"username": "pane-demo"})
    assert GenericRest.missing_credentials(config, credentials) == ["password"]
    with pytest.raises(CredentialsRejected, match="basic auth needs the credential password"):
        GenericRest.authenticate(config, credentials, _context())
    config, credentials = _link("acme", {"api_key": "x"})
    with pytest.raises(CredentialsRejected, match="credentials client_id, client_secret"):
        GenericRest.authenticate(config, credentials, _context())


def _manifest(stream: dict[str, Any], auth: dict[str, Any] | None = None) -> dict[str, Any]:
    leads = {"path": "leads", "fields": {"external_id": "id"}, **stream}
    return {"base_url": VENDOR, "auth": auth or {"type": "none"}, "streams": {"leads": leads}}


def _respx_connector(
    manifest: dict[str, Any], credentials: dict[str, Any] | None = None, **context: Any
) -> GenericRest:
    config = GenericRest.config_model.model_validate({"manifest": manifest})
    secrets = GenericRest.credentials_model.model_validate(credentials or {})
    client = build_client(
        allow_private=True,
        initial_wait=0.01,
        attempts=2,
        auth=GenericRest.authenticate(config, secrets, _context(**context)),
    )
    return GenericRest(config=config, credentials=secrets, client=client)


@respx.mock
async def test_a_rotated_refresh_token_is_saved_in_the_link(redis):
    token = respx.post(f"{VENDOR}/oauth/token").respond(
        200, json={"access_token": "at-1", "expires_in": 3600, "refresh_token": "rt-2"}
    )
    leads = respx.get(f"{VENDOR}/leads").respond(200, json=[{"id": "L-1"}])
    saved = Saved()
    connector = _respx_connector(
        _manifest({}, {"type": "oauth2_refresh_token", "token_url": "oauth/token"}),
        {"client_id": "pane", "client_secret": "s3cret", "refresh_token": "rt-1"},
        redis=redis,
        saved=saved,
    )
    async with connector.client:
        assert [r.external_id for r in _records(await _read(connector, Stream.LEADS))] == ["L-1"]
    form = dict(x.split("=") for x in token.calls[0].request.content.decode().split("&"))
    assert form["grant_type"] == "refresh_token"
    assert form["refresh_token"] == "rt-1"
    assert saved.calls == [
        {"client_id": "pane", "client_secret": "s3cret", "refresh_token": "rt-2"}
    ]
    assert leads.calls[0].request.headers["authorization"] == "Bearer at-1"


@respx.mock
async def test_api_keys_in_the_query_or_a_prefixed_header_stay_out_of_messages():
    route = respx.get(f"{VENDOR}/leads").respond(500, json={"message": "database on fire"})
    query = _respx_connector(
        _manifest({}, {"type": "api_key", "location": "query", "name": "key"}),
        {"api_key": "k-secret"},
    )
    async with query.client:
        with pytest.raises(ConnectorError, match="500 Internal Server Error") as failed:
            await _read(query, Stream.LEADS)
    assert "database on fire" in str(failed.value)
    assert "k-secret" not in str(failed.value)
    assert route.calls[-1].request.url.params["key"] == "k-secret"
    header = _respx_connector(
        _manifest(
            {},
            {"type": "api_key", "name": "Authorization", "prefix": "Token ", "credential": "token"},
        ),
        {"token": "t-1"},
    )
    async with header.client:
        with pytest.raises(
            CheckFailed, match=r"leads: GET https://api\.vendor\.example/leads answered 500"
        ):
            await header.check()
    assert route.calls[-1].request.headers["authorization"] == "Token t-1"


@respx.mock
async def test_check_explains_what_is_wrong_with_the_answer():
    respx.get(f"{VENDOR}/leads").respond(200, json={"items": []})
    connector = _respx_connector(_manifest({"records_path": "data.leads"}))
    async with connector.client:
        with pytest.raises(
            CheckFailed, match=r"no list of records at 'data.leads' \(found nothing\)"
        ):
            await connector.check()
    respx.get(f"{VENDOR}/leads").respond(200, text="<html>maintenance</html>")
    async with _respx_connector(_manifest({})).client as client:
        reading = GenericRest(
            config=connector.config, credentials=connector.credentials, client=client
        )
        with pytest.raises(ConnectorError, match="not JSON"):
            await _read(reading, Stream.LEADS)


# --- pagination styles -----------------------------------------------------------------------


def _records_page(*ids: str) -> list[dict[str, str]]:
    return [{"id": x} for x in ids]


@respx.mock
async def test_next_url_pages_absolute_and_relative():
    route = respx.get(url__startswith=f"{VENDOR}/leads")
    route.side_effect = lambda request: httpx.Response(
        200,
        json={
            "page=2": {"data": _records_page("C"), "next": None},
            "page=1": {"data": _records_page("B"), "next": "/leads?page=2"},
        }.get(
            request.url.query.decode(),
            {"data": _records_page("A"), "next": f"{VENDOR}/leads?page=1"},
        ),
    )
    connector = _respx_connector(
        _manifest({"records_path": "data", "pagination": {"type": "next_url", "url_path": "next"}})
    )
    async with connector.client:
        ids = [r.external_id for r in _records(await _read(connector, Stream.LEADS))]
    assert ids == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("pagination", "next_page", "complaint"),
    [
        (
            {"type": "cursor_token", "token_path": "next", "param": "cursor"},
            {"next": "same"},
            "same cursor token twice",
        ),
        (
            {"type": "next_url", "url_path": "next"},
            {"next": "/leads?again=1"},
            "same next page URL twice",
        ),
        (
            {"type": "link_header"},
            {"link": f"{VENDOR}/leads?again=1"},
            "same next page URL twice",
        ),
        # A vendor that ignores the page parameter: the same page, page after page.
        ({"type": "page_number"}, {"same_records": True}, "answered the same page twice"),
    ],
)
@respx.mock
async def test_a_vendor_pointing_back_at_a_page_stops_the_read(pagination, next_page, complaint):
    route = respx.get(url__startswith=f"{VENDOR}/leads")

    def answer(request: httpx.Request) -> httpx.Response:
        # Fresh records every time, unless the vendor repeats the page itself.
        ids = ("A", "B") if next_page.get("same_records") else (f"R{route.call_count}",)
        headers = {"Link": f'<{next_page["link"]}>; rel="next"'} if "link" in next_page else {}
        body = {"data": _records_page(*ids), "next": next_page.get("next")}
        return httpx.Response(200, json=body, headers=headers)

    route.side_effect = answer
    connector = _respx_connector(_manifest({"records_path": "data", "pagination": pagination}))
    async with connector.client:
        with pytest.raises(PaginationLoop, match=complaint):
            await _read(connector, Stream.LEADS)
    assert route.call_count == 2  # the second answer is where it stops


@respx.mock
async def test_next_pages_on_another_host_are_refused():
    respx.get(f"{VENDOR}/leads").respond(
        200, json=_records_page("A"), headers={"Link": '<https://evil.example/x>; rel="next"'}
    )
    evil = respx.get("https://evil.example/x").respond(200, json=[])
    foreign = _respx_connector(_manifest({"pagination": {"type": "link_header"}}))
    async with foreign.client:
        with pytest.raises(ConnectorError, match=r"another host \(evil.example\)"):
            await _read(foreign, Stream.LEADS)
    assert not evil.called


@respx.mock
async def test_page_numbers_without_a_total_stop_at_the_empty_page():
    route = respx.get(url__startswith=f"{VENDOR}/leads")
    pages = {"1": ["A", "B"], "2": ["C"], "3": []}
    route.side_effect = lambda request: httpx.Response(
        200, json={"items": _records_page(*pages[request.url.params["p"]])}
    )
    connector = _respx_connector(
        _manifest(
            {
                "records_path": "items",
                "params": {"sort": "asc"},
                "page_size": 2,
                "page_size_param": "size",
                "pagination": {"type": "page_number", "param": "p"},
            }
        )
    )
    async with connector.client:
        read = await _read(connector, Stream.LEADS)
    assert [[r.external_id for r in page.records] for page in read] == [["A", "B"], ["C"]]
    assert route.calls[0].request.url.params["sort"] == "asc"
    assert route.calls[0].request.url.params["size"] == "2"
    assert route.call_count == 3


@respx.mock
async def test_offsets_move_by_what_arrived_and_stop_at_the_total():
    route = respx.get(url__startswith=f"{VENDOR}/leads")
    everything = [f"L{n}" for n in range(7)]

    def answer(request: httpx.Request) -> httpx.Response:
        start = int(request.url.params["skip"])
        # The vendor caps pages at 3 whatever pane asks for.
        return httpx.Response(
            200, json={"total": 7, "rows": _records_page(*everything[start : start + 3])}
        )

    route.side_effect = answer
    connector = _respx_connector(
        _manifest(
            {
                "records_path": "rows",
                "page_size": 5,
                "page_size_param": "take",
                "pagination": {
                    "type": "offset",
                    "param": "skip",
                    "total_path": "total",
                    "stop_on_short_page": False,
                },
            }
        )
    )
    async with connector.client:
        ids = [r.external_id for r in _records(await _read(connector, Stream.LEADS))]
    assert ids == everything
    assert route.call_count == 3


@respx.mock
async def test_an_unordered_vendor_moves_the_cursor_only_after_the_last_page():
    route = respx.get(url__startswith=f"{VENDOR}/leads")
    route.side_effect = lambda request: httpx.Response(
        200,
        json={
            "items": [{"id": "B", "at": 200}, {"id": "A", "at": 100}]
            if "cursor" not in request.url.params
            else [{"id": "C", "at": 150}],
            "next": None if "cursor" in request.url.params else "c2",
        },
    )
    incremental = {"param": "since", "format": "epoch", "cursor_field": "at", "ordered": False}
    connector = _respx_connector(
        _manifest(
            {
                "records_path": "items",
                "incremental": incremental,
                "pagination": {"type": "cursor_token", "token_path": "next", "param": "cursor"},
            }
        )
    )
    previous = datetime.fromtimestamp(50, UTC).isoformat()
    async with connector.client:
        pages = await _read(connector, Stream.LEADS, previous)
    assert [page.cursor for page in pages] == [
        previous,
        datetime.fromtimestamp(200, UTC).isoformat(),
    ]
    assert route.calls[0].request.url.params["since"] == "50"


# --- mapping ---------------------------------------------------------------------------------


def _mapper(fields: dict[str, Any], stream: Stream = Stream.LEADS, **spec: Any) -> Mapper:
    return Mapper(stream, StreamSpec.model_validate({"path": "x", "fields": fields, **spec}))


def test_every_transform():
    mapper = _mapper(
        {
            "external_id": "id",
            "first_name": "contact.name.given",
            "last_name": {"type": "path", "path": "contact.name.family", "default": "Unknown"},
            "phone": "contact.phones.0",
            "source": {"type": "const", "value": "Partner portal"},
            "vendor_status": {
                "type": "map",
                "path": "status",
                "values": {"1": "Open", "true": "Flagged"},
                "default": "Other",
            },
            "title": {"type": "map", "path": "role", "values": {"cio": "CIO"}, "unmapped": "keep"},
            "vendor_created_at": {"type": "datetime", "path": "created", "format": "epoch_ms"},
            "accept_by": {"type": "datetime", "path": "due", "format": "%d.%m.%Y %H:%M"},
            "updated_at": {"type": "datetime", "path": "modified"},
            "score": "rating",
        },
        deleted_field="state",
        deleted_values=["gone", "purged"],
    )
    raw = {
        "id": 1042,
        "contact": {"name": {"given": "Anna"}, "phones": [4930123, "+49 30 9"]},
        "status": 1,
        "role": "ciso",
        "created": 1767600000000,
        "due": "31.01.2026 17:30",
        "modified": "2026-01-05T09:00:00",
        "rating": "85",
        "state": "gone",
    }
    record, cursor = mapper.map(raw)
    assert isinstance(record, LeadRecord), record
    assert cursor is None  # not an incremental stream
    assert record.external_id == "1042"  # numbers become text
    assert (record.first_name, record.last_name, record.phone) == ("Anna", "Unknown", "4930123")
    assert record.source == "Partner portal"
    assert record.vendor_status == "Open"
    assert record.title == "ciso"
    assert record.vendor_created_at == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert record.accept_by == datetime(2026, 1, 31, 17, 30, tzinfo=UTC)
    assert record.updated_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # naive: UTC
    assert record.score == 85
    assert record.deleted is True
    assert record.raw == raw
    other, _ = mapper.map({**raw, "status": True, "state": "live"})
    assert isinstance(other, LeadRecord)
    assert (other.vendor_status, other.deleted) == ("Flagged", False)
    unknown, _ = mapper.map({**raw, "status": "zzz"})
    assert isinstance(unknown, LeadRecord)
    assert unknown.vendor_status == "Other"


def test_enum_maps_can_refuse_unknown_words_and_lists_map_item_by_item():
    strict = _mapper(
        {
            "external_id": "id",
            "vendor_status": {"type": "map", "path": "s", "values": {"a": "A"}, "unmapped": "fail"},
        }
    )
    failed, _ = strict.map({"id": "1", "s": "b"})
    assert isinstance(failed, RecordFailure)
    assert failed.reason == "vendor_status: 'b' is not one of a"
    campaigns = _mapper(
        {
            "external_id": "ref",
            "name": "label",
            "products": "lines.*.sku",
            "starts_on": {"type": "date", "path": "from", "format": "%d/%m/%Y"},
            "ends_on": {"type": "date", "path": "to"},
        },
        Stream.CAMPAIGNS,
    )
    campaign, _ = campaigns.map(
        {
            "ref": 7,
            "label": "Spring push",
            "lines": [{"sku": "FW-200"}, {"sku": 600}],
            "from": "01/03/2026",
            "to": "2026-04-30T23:30:00-05:00",
        }
    )
    assert not isinstance(campaign, RecordFailure), campaign
    assert campaign.products == ["FW-200", "600"]
    assert campaign.starts_on == date(2026, 3, 1)
    assert campaign.ends_on == date(2026, 4, 30)  # the day as written, not in UTC


def test_money_and_dates_as_vendors_write_them():
    assert parse_money("1.234,56 €", ",", ".") == Decimal("1234.56")
    assert parse_money("EUR 1.234,56", ",") == Decimal("1234.56")
    assert parse_money("USD 1,234.50", ".", ",") == Decimal("1234.50")
    assert parse_money("1 234,5", ",", " ") == Decimal("1234.5")
    assert parse_money("1'234.00", ".", "'") == Decimal("1234.00")
    assert parse_money("-12.5") == Decimal("-12.5")
    assert parse_money(0.1) == Decimal("0.1")
    assert parse_money(12) == Decimal(12)
    assert parse_money("") is None
    for bad in ("twelve", True, "1.2.3"):
        with pytest.raises(ValueError, match="is not an amount"):
            parse_money(bad)
    assert parse_datetime("2026-01-05T08:00:00Z", "iso8601") == datetime(2026, 1, 5, 8, tzinfo=UTC)
    offset = parse_datetime("2026-01-05T10:00:00+02:00", "iso8601")
    assert offset == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert parse_datetime("1767600000", "epoch") == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert parse_datetime("05/01/2026 08:00", "%d/%m/%Y %H:%M") == datetime(
        2026, 1, 5, 8, tzinfo=UTC
    )
    assert parse_datetime(None, "epoch") is None
    with pytest.raises(ValueError, match="not a date and time like %d/%m/%Y"):
        parse_datetime("2026-01-05", "%d/%m/%Y")
    with pytest.raises(ValueError, match="not a timestamp"):
        parse_datetime("yesterday", "epoch")
    moment = datetime(2026, 1, 5, 9, 30, 15, tzinfo=UTC) + timedelta(hours=0)
    assert format_datetime(moment, "iso8601") == "2026-01-05T09:30:15Z"
    assert format_datetime(moment, "epoch") == "1767605415"
    assert format_datetime(moment, "epoch_ms") == "1767605415000"
    assert format_datetime(moment, "%d/%m/%Y %H:%M") == "05/01/2026 09:30"
    assert parse_date("1767600000", "epoch") == date(2026, 1, 5)
    assert parse_date("2026-01-05", "iso8601") == date(2026, 1, 5)


@respx.mock
async def test_a_record_that_does_not_fit_is_a_failure_and_the_rest_loads():
    respx.get(f"{VENDOR}/leads").respond(
        200,
        json={
            "items": [
                {"id": "A", "email": "a@example.com", "at": "2026-01-05T08:00:00Z"},
                {"id": "B", "at": "last tuesday"},
                {"email": "no-id@example.com", "at": "2026-01-05T08:01:00Z"},
                ["not", "an", "object"],
                {"id": "C", "score": 140, "at": "2026-01-05T08:02:00Z"},
                {"id": "D", "at": "2026-01-05T08:03:00Z"},
            ]
        },
    )
    fields = {"external_id": "id", "email": "email", "score": "score"}
    incremental = {"param": "since", "cursor_field": "at"}
    connector = _respx_connector(
        _manifest({"records_path": "items", "incremental": incremental, "fields": fields})
    )
    async with connector.client:
        [page] = await _read(connector, Stream.LEADS)
    assert [r.external_id for r in page.records] == ["A", "D"]
    reasons = [failure.reason for failure in page.failures]
    assert reasons[0] == "at: 'last tuesday' is not a date and time like iso8601"
    assert reasons[1].startswith("external_id: Field required")
    assert reasons[2] == "a record is a JSON object, not list"
    assert reasons[3].startswith("score: Input should be less than or equal to 100")
    assert page.failures[0].raw == {"id": "B", "at": "last tuesday"}
    # A failed record's change still counts: the next sync does not fetch it for ever.
    assert page.cursor == "2026-01-05T08:03:00+00:00"


# --- manifest validation ---------------------------------------------------------------------


def _invalid(manifest: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        GenericRestConfig.model_validate({"manifest": manifest})
    return str(refused.value)


def test_manifest_mistakes_are_named():
    base = _manifest({})
    leads = base["streams"]["leads"]
    assert "manifest.base_url" in _invalid({**base, "base_url": "ftp://x"})
    assert "manifest.streams.lead" in _invalid({**base, "streams": {"lead": leads}})
    typo = _invalid({**base, "streams": {"leads": {**leads, "recods_path": "data"}}})
    assert "manifest.streams.leads.recods_path" in typo
    assert "Extra inputs are not permitted" in typo
    paging = _invalid({**base, "streams": {"leads": {**leads, "pagination": {"type": "pages"}}}})
    assert "manifest.streams.leads.pagination" in paging
    assert "'cursor_token', 'page_number', 'offset'" in paging
    token = {"type": "cursor_token", "param": "c"}
    missing = _invalid({**base, "streams": {"leads": {**leads, "pagination": token}}})
    assert "manifest.streams.leads.pagination.cursor_token.token_path" in missing
    assert "Field required" in missing
    fields = {"external_id": "id", "frist_name": "first"}
    unknown = _invalid({**base, "streams": {"leads": {**leads, "fields": fields}}})
    assert "streams.leads.fields: leads records have no frist_name" in unknown
    assert "first_name" in unknown
    required = _invalid({**base, "streams": {"campaigns": leads}})
    assert "streams.campaigns.fields: name must be mapped" in required
    when = {"type": "datetime", "path": "m", "format": "DD/MM/YYYY"}
    dates = _invalid(
        {
            **base,
            "streams": {"leads": {**leads, "fields": {"external_id": "id", "updated_at": when}}},
        }
    )
    assert "a date format is iso8601, epoch, epoch_ms or a strftime pattern" in dates
    absolute = _invalid({**base, "streams": {"leads": {**leads, "path": "https://elsewhere/x"}}})
    assert "relative to the base URL" in absolute
    assert "'oauth2_client_credentials'" in _invalid({**base, "auth": {"type": "oauth"}})
    assert "not valid YAML or JSON" in _invalid("streams: [unclosed")


def test_a_manifest_may_be_pasted_as_yaml_text():
    text = """
    base_url: https://api.vendor.example/v2
    streams:
      leads:
        path: leads
        fields: {external_id: id}
    """
    config = GenericRestConfig.model_validate({"manifest": text, "base_url": "https://eu.x/v2/"})
    assert config.root == "https://eu.x/v2"
    assert config.manifest.streams[Stream.LEADS].path == "leads"
