"""What connectors produce: normalized records, pages of them, and records that failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
)


class Stream(StrEnum):
    LEADS = "leads"
    CAMPAIGNS = "campaigns"
    PRICE_LISTS = "price_lists"
    ASSETS = "assets"
    DEALS = "deals"


class Action(StrEnum):
    REGISTER_DEAL = "register_deal"
    ACTIVATE_CAMPAIGN = "activate_campaign"
    UPDATE_LEAD_STATUS = "update_lead_status"


def _vendor_object(value: Any) -> dict[str, Any]:
    """The vendor's JSON object, checked but kept as it came: validated as ``dict[str, Any]``
    it was copied, key by key, and the copy was a fifth of building a record."""
    if not isinstance(value, dict):
        raise ValueError(f"raw is the vendor's JSON object, not {type(value).__name__}")
    for key in value:
        if type(key) is not str:
            raise ValueError(f"raw's keys are strings, not {type(key).__name__}")
    return value


VendorObject = Annotated[
    dict[str, Any], PlainValidator(_vendor_object, json_schema_input_type=dict[str, Any])
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class Record(BaseModel):
    """One vendor object in pane's model. ``raw`` keeps the vendor's payload as received, so
    a mapping fix can be replayed without a re-sync; ``deleted`` marks a tombstone."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    external_id: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
    ]
    updated_at: AwareDatetime | None = None
    deleted: bool = False
    raw: VendorObject


class LeadRecord(Record):
    first_name: Text | None = None
    last_name: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    company: Text | None = None
    title: Text | None = None
    country: Text | None = None
    vendor_status: Text | None = Field(default=None, description="The vendor's own word for it.")
    score: Annotated[int, Field(ge=0, le=100)] | None = None
    source: Text | None = None
    campaign_ref: Text | None = None
    vendor_created_at: AwareDatetime | None = None
    accept_by: AwareDatetime | None = None


class CampaignRecord(Record):
    name: Text
    description: Text | None = None
    kind: Text | None = None
    status: Text | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    channels: list[Text] = Field(default_factory=list)
    products: list[Text] = Field(default_factory=list)


class PriceItemRecord(Record):
    """A line of a price list. Money is Decimal; margin is worked out by pane, in one place."""

    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    name: Text | None = None
    currency: Currency
    list_price: Decimal | None = Field(default=None, ge=0)
    partner_cost: Decimal | None = Field(default=None, ge=0)
    msrp: Decimal | None = Field(default=None, ge=0)
    discount: Decimal | None = None
    valid_from: date | None = None
    valid_to: date | None = None


class AssetRecord(Record):
    title: Text
    kind: Text | None = None
    url: Text
    language: Text | None = None
    product: Text | None = None


class DealRecord(Record):
    customer: Text
    status: Text | None = None
    amount: Decimal | None = None
    currency: Currency | None = None
    close_on: date | None = None


RECORD_TYPES: dict[Stream, type[Record]] = {
    Stream.LEADS: LeadRecord,
    Stream.CAMPAIGNS: CampaignRecord,
    Stream.PRICE_LISTS: PriceItemRecord,
    Stream.ASSETS: AssetRecord,
    Stream.DEALS: DealRecord,
}


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """A vendor object that could not be normalized: kept with its payload and the reason."""

    raw: Any
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    """Records read in one go, and the cursor to resume after them (None: nothing to resume)."""

    stream: Stream
    records: list[Record] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    cursor: str | None = None


@dataclass(slots=True)
class MappedBatch:
    """Vendor objects as mapped, in the order read, and the newest change time among them
    (what a connector's next cursor starts from)."""

    records: list[Record] = field(default_factory=list)
    failures: list[RecordFailure] = field(default_factory=list)
    newest: datetime | None = None

    def add(self, mapped: Record | RecordFailure, changed_at: datetime | None) -> None:
        if isinstance(mapped, RecordFailure):
            self.failures.append(mapped)
        else:
            self.records.append(mapped)
        if changed_at is not None and (self.newest is None or changed_at > self.newest):
            self.newest = changed_at
