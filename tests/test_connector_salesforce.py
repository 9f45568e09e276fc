"""salesforce against an org answered by respx in the REST API's documented shapes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import ValidationError

from pane.connectors.base import AuthContext, CheckFailed, ConnectorError, CredentialsRejected
from pane.connectors.http import build_client
from pane.connectors.records import Action, Stream
from pane.connectors.salesforce import (
    DealRejected,
    QueryRefused,
    Salesforce,
    SalesforceConfig,
    SalesforceCredentials,
)
from tests.salesforce_org import (
    DATA,
    NEXT,
    ORG,
    TOKEN_URL,
    client_credentials,
    lead_row,
    posted_form,
    query_batch,
    sobject_row,
    token_body,
)


def _keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


PRIVATE_KEY, PUBLIC_KEY = _keys()


def _jwt_bearer() -> dict[str, str]:
    return {
        "grant": "jwt_bearer",
        "client_id": f"3MVG9{uuid.uuid4().hex}",
        "username": "pane-integration@acme.example",
        "private_key": PRIVATE_KEY,
    }


async def _no_save(_: dict[str, Any]) -> None:
    raise AssertionError("salesforce never rotates stored credentials")


@asynccontextmanager
async def _salesforce(
    redis: Any, credentials: dict[str, str] | None = None, **config: Any
) -> AsyncIterator[Salesforce]:
    settings = SalesforceConfig.model_validate({"instance_url": ORG, **config})
    secrets = SalesforceCredentials.model_validate(credentials or client_credentials())
    context = AuthContext(redis=redis, holder="link-1", save_credentials=_no_save)
    auth = Salesforce.authenticate(settings, secrets, context)
    async with build_client(auth=auth, allow_private=True, initial_wait=0.01) as client:
        yield Salesforce(config=settings, credentials=secrets, client=client)


async def _read(connector: Salesforce, stream: Stream, cursor: str | None = None) -> list:
    return [page async for page in connector.read(stream, cursor)]


def test_describes_its_streams_actions_and_two_ways_to_sign_in():
    described = Salesforce.describe()
    assert described["name"] == "salesforce"
    assert described["streams"] == ["campaigns", "deals", "leads", "price_lists"]
    assert described["actions"] == ["register_deal"]
    schema = described["credentials_schema"]
    assert set(schema["discriminator"]["mapping"]) == {"client_credentials", "jwt_bearer"}
    assert schema["$defs"]["JwtBearerGrant"]["properties"]["private_key"]["format"] == "password"


@respx.mock
async def test_client_credentials_sign_in_then_a_cheap_check(redis):
    credentials = client_credentials()
    token = respx.post(TOKEN_URL).respond(200, json=token_body())
    query = respx.get(f"{DATA}/query").respond(200, json=query_batch([]))
    async with _salesforce(redis, credentials) as connector:
        await connector.check()
    assert token.call_count == 1  # one token for both queries
    assert posted_form(token.calls[0].request) == {
        "grant_type": "client_credentials",
        "client_id": credentials["client_id"],
        "client_secret": "consumer-secret",
    }
    asked = [call.request.url.params["q"] for call in query.calls]
    assert asked[0].startswith("SELECT Id, IsDeleted, SystemModstamp, FirstName")
    assert asked[0].endswith("FROM Lead ORDER BY SystemModstamp, Id LIMIT 1")
    assert "End_Customer__c" in asked[1]
    assert "FROM Deal_Registration__c" in asked[1]
    bearer = {call.request.headers["authorization"] for call in query.calls}
    assert bearer == {"Bearer 00D5g000004ABCD!tok-1"}


@respx.mock
async def test_jwt_bearer_posts_an_assertion_signed_for_the_sandbox(redis):
    credentials = _jwt_bearer()
    token = respx.post(TOKEN_URL).respond(200, json=token_body())
    respx.get(f"{DATA}/query").respond(200, json=query_batch([]))
    async with _salesforce(
        redis, credentials, jwt_audience="https://test.salesforce.com"
    ) as connector:
        await connector.check()
    form = posted_form(token.calls[0].request)
    assert set(form) == {"grant_type", "assertion"}
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    decoded = jwt.decode(form["assertion"], RSAKey.import_key(PUBLIC_KEY))
    assert decoded.header["alg"] == "RS256"
    claims = decoded.claims
    assert claims["iss"] == credentials["client_id"]
    assert claims["sub"] == "pane-integration@acme.example"
    assert claims["aud"] == "https://test.salesforce.com"
    assert time.time() + 170 <= claims["exp"] <= time.time() + 181


@pytest.mark.parametrize(
    ("credentials", "error", "description"),
    [
        (client_credentials, "invalid_client", "invalid client credentials"),
        (_jwt_bearer, "invalid_grant", "user hasn't approved this consumer"),
    ],
)
@respx.mock
async def test_a_refused_grant_is_a_credentials_rejection(redis, credentials, error, description):
    respx.post(TOKEN_URL).respond(400, json={"error": error, "error_description": description})
    query = respx.get(f"{DATA}/query").respond(200, json=query_batch([]))
    async with _salesforce(redis, credentials()) as connector:
        with pytest.raises(CredentialsRejected, match=f"{error}: {description}"):
            await connector.check()
    assert not query.called


@respx.mock
async def test_pages_follow_next_records_url_each_with_its_cursor(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    first = respx.get(f"{DATA}/queryAll").respond(
        200,
        json=query_batch(
            [
                lead_row("00Q5g00000AAAA1EAA", "2026-01-05T07:59:00.000+0000"),
                lead_row("00Q5g00000AAAA2EAA", "2026-01-05T08:00:00.250+0000"),
            ],
            next_url=NEXT,
        ),
    )
    second = respx.get(f"{ORG}{NEXT}").respond(
        200, json=query_batch([lead_row("00Q5g00000AAAA3EAA", "2026-01-06T09:30:00.000+0000")])
    )
    async with _salesforce(redis) as connector:
        pages = await _read(connector, Stream.LEADS)
    assert [[lead.external_id for lead in page.records] for page in pages] == [
        ["00Q5g00000AAAA1EAA", "00Q5g00000AAAA2EAA"],
        ["00Q5g00000AAAA3EAA"],
    ]
    assert [page.cursor for page in pages] == ["2026-01-05T08:00:00Z", "2026-01-06T09:30:00Z"]
    assert "WHERE" not in first.calls[0].request.url.params["q"]  # a first read reads it all
    assert not second.calls[0].request.url.params  # the locator alone, no query again
    lead = pages[0].records[0]
    assert (lead.first_name, lead.last_name, lead.company) == (
        "Ada",
        "Lovelace",
        "Analytical Engines Ltd",
    )
    assert lead.vendor_status == "Open - Not Contacted"
    assert lead.source == "Partner Referral"
    assert lead.vendor_created_at == datetime(2026, 1, 2, 10, tzinfo=UTC)
    assert lead.updated_at == datetime(2026, 1, 5, 7, 59, tzinfo=UTC)
    assert "attributes" not in lead.raw
    assert lead.raw["Status"] == "Open - Not Contacted"


@respx.mock
async def test_an_incremental_read_asks_only_for_what_changed_since_the_cursor(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    query = respx.get(f"{DATA}/queryAll").respond(200, json=query_batch([]))
    async with _salesforce(redis) as connector:
        pages = await _read(connector, Stream.CAMPAIGNS, "2026-01-05T08:00:00Z")
    soql = query.calls[0].request.url.params["q"]
    assert soql.endswith(
        "FROM Campaign WHERE SystemModstamp >= 2026-01-05T08:00:00Z ORDER BY SystemModstamp, Id"
    )
    [page] = pages
    assert page.records == []
    assert page.cursor == "2026-01-05T08:00:00Z"  # nothing new: the cursor stays


@respx.mock
async def test_deleted_rows_and_deactivated_price_entries_are_tombstones(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    query = respx.get(f"{DATA}/queryAll")
    query.side_effect = [
        httpx.Response(
            200,
            json=query_batch(
                [
                    lead_row("00Q5g00000AAAA1EAA", "2026-01-05T08:00:00.000+0000"),
                    lead_row("00Q5g00000AAAA2EAA", "2026-01-05T09:00:00.000+0000", IsDeleted=True),
                ]
            ),
        ),
        httpx.Response(
            200,
            json=query_batch(
                [
                    sobject_row(
                        "PricebookEntry",
                        "01u5g00000BBBB1AAA",
                        "2026-01-05T10:00:00.000+0000",
                        Pricebook2Id="01s5g00000CCCC1AAA",
                        Product2Id="01t5g00000DDDD1AAA",
                        Product2={
                            "attributes": {"type": "Product2", "url": "/x"},
                            "ProductCode": "FW-600",
                            "Name": "Firewall 600",
                        },
                        UnitPrice=5490.0,
                        IsActive=False,
                    ),
                    sobject_row(
                        "PricebookEntry",
                        "01u5g00000BBBB2AAA",
                        "2026-01-05T11:00:00.000+0000",
                        Product2Id="01t5g00000DDDD2AAA",
                        Product2=None,  # its product was deleted with it
                        UnitPrice=10.0,
                        IsActive=True,
                        IsDeleted=True,
                    ),
                ]
            ),
        ),
    ]
    async with _salesforce(redis) as connector:
        [leads] = await _read(connector, Stream.LEADS)
        [prices] = await _read(connector, Stream.PRICE_LISTS)
    assert [(lead.external_id, lead.deleted) for lead in leads.records] == [
        ("00Q5g00000AAAA1EAA", False),
        ("00Q5g00000AAAA2EAA", True),
    ]
    assert [(item.sku, item.deleted) for item in prices.records] == [
        ("FW-600", True),
        ("01t5g00000DDDD2AAA", True),
    ]
    assert prices.failures == []
    assert prices.records[0].raw["Product2"] == {"ProductCode": "FW-600", "Name": "Firewall 600"}
    # queryAll, so Salesforce includes what sits in the recycle bin.
    assert all(call.request.url.path.endswith("/queryAll") for call in query.calls)


@respx.mock
async def test_a_malformed_row_is_a_failure_and_the_rest_of_the_page_loads(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    long_description = "Spring push. " * 400
    respx.get(f"{DATA}/queryAll").respond(
        200,
        json=query_batch(
            [
                sobject_row(
                    "Campaign",
                    "7015g00000EEEE1AAA",
                    "2026-01-05T08:00:00.000+0000",
                    Name="Firewall refresh",
                    Description=long_description,
                    Type="Webinar",
                    Status="Planned",
                    StartDate="2026-03-01",
                    EndDate="2026-03-31",
                ),
                sobject_row(
                    "Campaign",
                    "7015g00000EEEE2AAA",
                    "2026-01-05T09:00:00.000+0000",
                    Name="Broken dates",
                    StartDate="next spring",
                ),
                sobject_row(
                    "Campaign",
                    "7015g00000EEEE3AAA",
                    "2026-01-05T10:00:00.000+0000",
                    Name="Cloud days",
                    Type="Event",
                ),
            ]
        ),
    )
    async with _salesforce(redis) as connector:
        [page] = await _read(connector, Stream.CAMPAIGNS)
    assert [campaign.name for campaign in page.records] == ["Firewall refresh", "Cloud days"]
    refresh = page.records[0]
    assert (refresh.kind, refresh.status) == ("Webinar", "Planned")
    assert (refresh.starts_on, refresh.ends_on) == (date(2026, 3, 1), date(2026, 3, 31))
    assert len(refresh.description) == 2000  # cut to what pane keeps...
    assert refresh.raw["Description"] == long_description  # ...the whole text stays in raw
    [failure] = page.failures
    assert failure.raw["Id"] == "7015g00000EEEE2AAA"
    assert "starts_on" in failure.reason
    assert page.cursor == "2026-01-05T10:00:00Z"  # the failed row was read all the same


@respx.mock
async def test_price_entries_with_a_partner_discount_in_each_currency(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    entry = {
        "Pricebook2Id": "01s5g00000CCCC1AAA",
        "Product2Id": "01t5g00000DDDD1AAA",
        "Product2": {"attributes": {"type": "Product2"}, "ProductCode": "FW-600", "Name": "FW"},
        "UnitPrice": 1299.99,
        "IsActive": True,
    }
    query = respx.get(f"{DATA}/queryAll").respond(
        200,
        json=query_batch(
            [
                sobject_row(
                    "PricebookEntry",
                    "01u5g00000BBBB1AAA",
                    "2026-01-05T08:00:00.000+0000",
                    CurrencyIsoCode="EUR",
                    **entry,
                ),
                sobject_row(
                    "PricebookEntry",
                    "01u5g00000BBBB2AAA",
                    "2026-01-05T08:00:00.000+0000",
                    CurrencyIsoCode="USD",
                    **{**entry, "Product2": {"ProductCode": None, "Name": "No code"}},
                ),
            ]
        ),
    )
    async with _salesforce(redis, multi_currency=True, partner_discount_percent="20") as sf:
        [page] = await _read(sf, Stream.PRICE_LISTS)
    soql = query.calls[0].request.url.params["q"]
    assert "Product2.ProductCode, Product2.Name, UnitPrice" in soql
    assert "CurrencyIsoCode" in soql
    assert "FROM PricebookEntry WHERE Pricebook2.IsStandard = true ORDER BY" in soql
    [item] = page.records
    assert (item.sku, item.name, item.currency) == ("FW-600", "FW", "EUR")
    assert item.list_price == Decimal("1299.99")
    assert item.partner_cost == Decimal("1039.99")
    assert item.discount == Decimal("20")
    [failure] = page.failures
    assert "no ProductCode" in failure.reason


@respx.mock
async def test_partner_cost_from_a_field_of_a_chosen_price_book(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    query = respx.get(f"{DATA}/queryAll").respond(
        200,
        json=query_batch(
            [
                sobject_row(
                    "PricebookEntry",
                    "01u5g00000BBBB1AAA",
                    "2026-01-05T08:00:00.000+0000",
                    Product2={
                        "ProductCode": "AP-22",
                        "Name": "Access point",
                        "Partner_Cost__c": 84.5,
                    },
                    UnitPrice=129.0,
                    IsActive=True,
                )
            ]
        ),
    )
    async with _salesforce(
        redis,
        currency="EUR",
        pricebook_id="01s5g00000CCCC9AAA",
        partner_cost_field="Product2.Partner_Cost__c",
    ) as connector:
        [page] = await _read(connector, Stream.PRICE_LISTS)
    soql = query.calls[0].request.url.params["q"]
    assert "Product2.Partner_Cost__c" in soql
    assert "WHERE Pricebook2Id = '01s5g00000CCCC9AAA'" in soql
    assert "CurrencyIsoCode" not in soql  # a single-currency org has no such field
    [item] = page.records
    assert (item.currency, item.list_price, item.partner_cost) == (
        "EUR",
        Decimal("129.0"),
        Decimal("84.5"),
    )


@respx.mock
async def test_an_expired_session_is_signed_in_again_once(redis):
    token = respx.post(TOKEN_URL)
    token.side_effect = [
        httpx.Response(200, json=token_body("00D!tok-1")),
        httpx.Response(200, json=token_body("00D!tok-2")),
    ]
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]

    def org(request: httpx.Request) -> httpx.Response:
        if request.headers["authorization"] == "Bearer 00D!tok-2":
            return httpx.Response(
                200,
                json=query_batch([lead_row("00Q5g00000AAAA1EAA", "2026-01-05T08:00:00.000+0000")]),
            )
        return httpx.Response(401, json=expired)

    query = respx.get(f"{DATA}/queryAll").mock(side_effect=org)
    async with _salesforce(redis) as connector:
        [page] = await _read(connector, Stream.LEADS)
    assert [lead.external_id for lead in page.records] == ["00Q5g00000AAAA1EAA"]
    assert token.call_count == 2
    assert query.call_count == 2


@respx.mock
async def test_a_session_refused_even_after_signing_in_again_is_a_credentials_rejection(redis):
    token = respx.post(TOKEN_URL).respond(200, json=token_body())
    respx.get(f"{DATA}/queryAll").respond(
        401, json=[{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    )
    async with _salesforce(redis) as connector:
        with pytest.raises(CredentialsRejected, match="Session expired or invalid"):
            await _read(connector, Stream.LEADS)
    assert token.call_count == 2


@respx.mock
async def test_a_query_the_org_refuses_fails_the_check_with_its_message(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    query = respx.get(f"{DATA}/query")
    query.side_effect = [
        httpx.Response(200, json=query_batch([])),
        httpx.Response(
            400,
            json=[
                {
                    "message": "No such column 'End_Customer__c' on entity 'Deal_Registration__c'.",
                    "errorCode": "INVALID_FIELD",
                }
            ],
        ),
    ]
    async with _salesforce(redis) as connector:
        with pytest.raises(QueryRefused, match="No such column 'End_Customer__c'") as refused:
            await connector.check()
    assert isinstance(refused.value, CheckFailed)
    assert "deal registrations (Deal_Registration__c)" in refused.value.reason
    assert refused.value.problem.error_code == "INVALID_FIELD"


@respx.mock
async def test_a_next_records_url_off_the_org_is_not_followed(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    respx.get(f"{DATA}/queryAll").respond(
        200,
        json=query_batch(
            [lead_row("00Q5g00000AAAA1EAA", "2026-01-05T08:00:00.000+0000")],
            next_url="https://collector.example.net/steal",
        ),
    )
    elsewhere = respx.get("https://collector.example.net/steal").respond(200, json=query_batch([]))
    async with _salesforce(redis) as connector:
        with pytest.raises(ConnectorError, match="unexpected nextRecordsUrl"):
            await _read(connector, Stream.LEADS)
    assert not elsewhere.called


@respx.mock
async def test_deal_registrations_are_read_with_the_configured_fields(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    query = respx.get(f"{DATA}/queryAll").respond(
        200,
        json=query_batch(
            [
                sobject_row(
                    "Partner_Deal__c",
                    "a0B5g00000FFFF1EAA",
                    "2026-01-05T08:00:00.000+0000",
                    Name="DR-000042",
                    Account_Name__c="Globex Corporation",
                    Deal_Status__c="Approved",
                    Deal_Value__c=48000.5,
                    Close__c="2026-04-30",
                )
            ]
        ),
    )
    fields = {
        "customer": "Account_Name__c",
        "status": "Deal_Status__c",
        "amount": "Deal_Value__c",
        "close_on": "Close__c",
        "customer_domain": None,
        "customer_country": None,
        "contact_name": None,
        "contact_email": None,
        "contact_phone": None,
        "description": None,
        "products": None,
    }
    async with _salesforce(redis, deal_object="Partner_Deal__c", deal_fields=fields) as sf:
        [page] = await _read(sf, Stream.DEALS)
    soql = query.calls[0].request.url.params["q"]
    assert soql.startswith(
        "SELECT Id, IsDeleted, SystemModstamp, Name, Account_Name__c, Deal_Value__c, Close__c, "
        "Deal_Status__c FROM Partner_Deal__c"
    )
    [deal] = page.records
    assert (deal.customer, deal.status, deal.currency) == ("Globex Corporation", "Approved", "USD")
    assert deal.amount == Decimal("48000.5")
    assert deal.close_on == date(2026, 4, 30)


DEAL = {
    "customer": "Globex Corporation",
    "customer_domain": "globex.example",
    "customer_country": "US",
    "contact": {"name": "Hank Scorpio", "email": "hank@globex.example"},
    "description": "Branch office firewalls",
    "products": [{"sku": "FW-600", "quantity": 12, "price": "5490.00"}, {"sku": "SUP-1Y"}],
    "amount": "65880.00",
    "currency": "USD",
    "close_on": "2026-04-30",
}


@respx.mock
async def test_register_deal_posts_the_mapped_fields_and_returns_the_new_id(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    created = {"id": "a0B5g00000FFFF9EAA", "success": True, "errors": []}
    route = respx.post(f"{DATA}/sobjects/Deal_Registration__c/").respond(201, json=created)
    async with _salesforce(redis) as connector:
        answer = await connector.act(Action.REGISTER_DEAL, DEAL)
    assert answer == {"external_id": "a0B5g00000FFFF9EAA", "raw": created}
    assert json.loads(route.calls[0].request.content) == {
        "End_Customer__c": "Globex Corporation",
        "End_Customer_Website__c": "globex.example",
        "End_Customer_Country__c": "US",
        "Contact_Name__c": "Hank Scorpio",
        "Contact_Email__c": "hank@globex.example",
        "Description__c": "Branch office firewalls",
        "Products__c": "FW-600 x 12 @ 5490.00\nSUP-1Y x 1",
        "Amount__c": 65880.0,
        "Expected_Close_Date__c": "2026-04-30",
    }


@respx.mock
async def test_a_deal_salesforce_refuses_surfaces_its_message(redis):
    respx.post(TOKEN_URL).respond(200, json=token_body())
    route = respx.post(f"{DATA}/sobjects/Deal_Registration__c/").respond(
        400,
        json=[
            {
                "message": "Expected close date must be within 180 days",
                "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "fields": ["Expected_Close_Date__c"],
            }
        ],
    )
    async with _salesforce(redis) as connector:
        with pytest.raises(DealRejected, match="must be within 180 days") as rejected:
            await connector.act(Action.REGISTER_DEAL, DEAL)
        assert rejected.value.error_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        assert rejected.value.fields == ["Expected_Close_Date__c"]

        # Deals pane can tell are wrong never reach Salesforce.
        with pytest.raises(DealRejected, match="customer"):
            await connector.act(Action.REGISTER_DEAL, {"amount": "10.00"})
        with pytest.raises(DealRejected, match="keeps every amount in USD, not EUR"):
            await connector.act(Action.REGISTER_DEAL, {**DEAL, "currency": "EUR"})
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("model", "values", "message"),
    [
        (
            SalesforceCredentials,
            {"grant": "jwt_bearer", "client_id": "x", "username": "u"},
            "private_key",
        ),
        (
            SalesforceCredentials,
            {"grant": "jwt_bearer", "client_id": "x", "username": "u", "private_key": "hunter2"},
            "not an RSA private key",
        ),
        (
            SalesforceCredentials,
            {"grant": "jwt_bearer", "client_id": "x", "username": "u", "private_key": PUBLIC_KEY},
            "the private key is needed",
        ),
        (SalesforceCredentials, {"grant": "password", "client_id": "x"}, "client_credentials"),
        (SalesforceConfig, {"instance_url": "http://acme.my.salesforce.com"}, "https only"),
        (SalesforceConfig, {"instance_url": f"{ORG}/lightning/page/home"}, "address only"),
        (
            SalesforceConfig,
            {"instance_url": ORG, "partner_cost_field": "Cost__c", "partner_discount_percent": 5},
            "not both",
        ),
        (SalesforceConfig, {"instance_url": ORG, "deal_object": "Deal__c WHERE"}, "deal_object"),
    ],
)
def test_link_settings_are_refused_with_a_reason(model, values, message):
    with pytest.raises(ValidationError, match=message):
        model.model_validate(values)
