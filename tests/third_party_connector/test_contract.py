"""Deal Desk runs pane's connector contract, as its author would in their own suite: the
connector class, and the ``vendor`` fixture saying which link works, which ones the vendor
refuses and how it is reached (here a respx router as transport). pane's conftest provides
the ``redis`` fixture the contract asks for."""

from __future__ import annotations

import pytest

from pane.connectors.base import CheckFailed, CredentialsRejected
from pane.connectors.testing import ConnectorContract, Refusal, Vendor
from tests.third_party_connector.connector import DealDesk
from tests.third_party_connector.vendor import BASE_URL, DealDeskApi

API_KEY = "dd-live-3f9a"
PARTNER = "P-0042"


def _deal(number: int, updated_at: str, **changes: object) -> dict[str, object]:
    return {
        "id": f"DD-{number}",
        "customer": {"name": f"Customer {number}"},
        "stage": "approved",
        "value": {"amount": f"{number * 1000}.50", "currency": "EUR"},
        "expected_close": "2026-04-30",
        "updated_at": updated_at,
        **changes,
    }


DEALS = [
    _deal(1001, "2026-01-05T08:00:00+00:00"),
    _deal(1002, "2026-01-05T09:30:00+00:00", stage="submitted"),
    _deal(1003, "2026-01-05T10:15:00+00:00"),
    _deal(1004, "2026-01-06T07:00:00+00:00", archived=True),
    _deal(1005, "2026-01-06T17:30:00+00:00", value=None),
    # Two deals changed at the same moment: both sit at the boundary of the cursor.
    _deal(1006, "2026-01-06T18:00:00+00:00"),
    _deal(1007, "2026-01-06T18:00:00+00:00", stage="won"),
]


def deal_desk() -> Vendor:
    api = DealDeskApi(DEALS, api_key=API_KEY, partner_id=PARTNER)
    config = {"base_url": BASE_URL, "partner_id": PARTNER, "page_size": 3}
    return Vendor(
        config=config,
        credentials={"api_key": API_KEY},
        refusals=[
            Refusal(CredentialsRejected, credentials={"api_key": "dd-revoked"}),
            Refusal(CheckFailed, config={**config, "partner_id": "P-0000"}),
        ],
        transport=api.transport,
    )


class TestDealDeskContract(ConnectorContract):
    connector_class = DealDesk

    @pytest.fixture
    def vendor(self) -> Vendor:
        return deal_desk()
