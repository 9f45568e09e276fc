"""Every built-in connector passes the connector contract: csv_price_list and generic_rest
(once per demo manifest) against the vendor simulator on loopback, salesforce against an org
answered by respx in Salesforce's documented REST shapes."""

from __future__ import annotations

from typing import Any

import pytest

from pane.connectors.base import CheckFailed, CredentialsRejected
from pane.connectors.csv_price_list import CsvPriceList
from pane.connectors.generic_rest import GenericRest
from pane.connectors.salesforce import Salesforce
from pane.connectors.testing import ConnectorContract, Refusal, Vendor
from pane.demo.manifests import MANIFESTS, demo_link
from pane.demo.simulator import Simulator
from tests.loopback import Loopback
from tests.salesforce_org import ORG, Org, lead_row, sobject_row


@pytest.fixture(scope="module")
def simulator_url(loopback: Loopback) -> str:
    # Leads in three pages of the manifests' 500: the contract pages through them.
    return loopback.mount(Simulator(leads_per_vendor=1100).app)


class TestCsvPriceListContract(ConnectorContract):
    connector_class = CsvPriceList

    def cursor_position(self, cursor: str) -> Any:
        return None  # the file's version: it changes with the file, in no order

    @pytest.fixture
    def vendor(self, simulator_url: str) -> Vendor:
        northwind = demo_link("northwind", simulator_url)
        config = northwind["config"]
        return Vendor(
            config=config,
            credentials=northwind["credentials"],
            refusals=[
                Refusal(CredentialsRejected, credentials={"token": "revoked"}),
                Refusal(
                    CheckFailed,
                    config={**config, "columns": {**config["columns"], "msrp": "Listenpreis"}},
                ),
            ],
        )


class TestGenericRestContract(ConnectorContract):
    connector_class = GenericRest

    @pytest.fixture(params=MANIFESTS)
    def vendor(self, request: pytest.FixtureRequest, simulator_url: str) -> Vendor:
        link = demo_link(request.param, simulator_url)
        config, credentials = link["config"], link["credentials"]
        return Vendor(
            config=config,
            credentials=credentials,
            refusals=[
                Refusal(CredentialsRejected, credentials=dict.fromkeys(credentials, "revoked")),
                Refusal(CredentialsRejected, credentials={}),
                Refusal(CheckFailed, config={**config, "base_url": f"{config['base_url']}/v0"}),
            ],
        )


def _price_entry(record_id: str, stamp: str, sku: str, price: float) -> dict[str, Any]:
    return sobject_row(
        "PricebookEntry",
        record_id,
        stamp,
        Pricebook2Id="01s5g00000CCCC1AAA",
        Product2Id=f"01t5g00000{sku.replace('-', '')[:4]}1AAA",
        Product2={"attributes": {"type": "Product2"}, "ProductCode": sku, "Name": sku},
        UnitPrice=price,
        IsActive=True,
    )


def _deal(record_id: str, stamp: str, customer: str) -> dict[str, Any]:
    return sobject_row(
        "Deal_Registration__c",
        record_id,
        stamp,
        Name=f"DR-{record_id[-4:]}",
        End_Customer__c=customer,
        Status__c="Submitted",
        Amount__c=48000.5,
        Expected_Close_Date__c="2026-04-30",
    )


SALESFORCE_ROWS = {
    "Lead": [
        lead_row("00Q5g00000AAAA1EAA", "2026-01-05T07:59:00.000+0000"),
        lead_row("00Q5g00000AAAA2EAA", "2026-01-05T07:59:30.000+0000"),
        lead_row("00Q5g00000AAAA3EAA", "2026-01-05T08:00:00.000+0000", IsDeleted=True),
        # Within the newest second: the cursor keeps whole seconds, both are at its boundary.
        lead_row("00Q5g00000AAAA4EAA", "2026-01-05T08:01:00.250+0000"),
        lead_row("00Q5g00000AAAA5EAA", "2026-01-05T08:01:00.750+0000"),
    ],
    "Campaign": [
        sobject_row(
            "Campaign",
            f"7015g00000EEEE{n}AAA",
            f"2026-01-0{n}T09:00:00.000+0000",
            Name=f"Firewall refresh {n}",
            Type="Webinar",
            Status="Planned",
            StartDate="2026-03-01",
            EndDate="2026-03-31",
        )
        for n in range(1, 4)
    ],
    "PricebookEntry": [
        _price_entry("01u5g00000BBBB1AAA", "2026-01-05T10:00:00.000+0000", "FW-600", 5490.0),
        _price_entry("01u5g00000BBBB2AAA", "2026-01-05T10:05:00.000+0000", "AP-22", 129.0),
        _price_entry("01u5g00000BBBB3AAA", "2026-01-05T10:10:00.000+0000", "SW-24P", 1299.0),
    ],
    "Deal_Registration__c": [
        _deal("a0B5g00000FFFF1EAA", "2026-01-05T11:00:00.000+0000", "Globex Corporation"),
        _deal("a0B5g00000FFFF2EAA", "2026-01-06T11:00:00.000+0000", "Initech"),
        _deal("a0B5g00000FFFF3EAA", "2026-01-07T11:00:00.000+0000", "Umbrella Corp"),
    ],
}


class TestSalesforceContract(ConnectorContract):
    connector_class = Salesforce

    @pytest.fixture
    def vendor(self) -> Vendor:
        org = Org(SALESFORCE_ROWS, batch_size=2)
        config = {"instance_url": ORG}
        return Vendor(
            config=config,
            credentials=org.credentials,
            refusals=[
                Refusal(
                    CredentialsRejected,
                    credentials={**org.credentials, "client_secret": "revoked"},
                ),
                # An object the org does not have: Salesforce refuses the query.
                Refusal(CheckFailed, config={**config, "deal_object": "Partner_Deal__c"}),
            ],
            transport=org.transport,
        )
