"""Salesforce rows to pane's records, and a deal registration to the vendor's object.

``raw`` is the row as Salesforce sent it less its ``attributes`` (type and URL, at every level),
which say nothing a replay needs. Text longer than pane keeps (a Campaign description can be
32k) is cut, the full text stays in ``raw``. A row that does not normalize is a
``RecordFailure`` with the reason, and the rest of its page loads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from pane.connectors.records import (
    CampaignRecord,
    DealRecord,
    LeadRecord,
    PriceItemRecord,
    Record,
    RecordFailure,
    Stream,
)
from pane.connectors.salesforce.config import SalesforceConfig

Row = dict[str, Any]
TEXT_LIMIT = 2000
CENT = Decimal("0.01")


def clean(value: Any) -> Any:
    """``value`` without Salesforce's ``attributes`` objects."""
    if isinstance(value, dict):
        return {key: clean(item) for key, item in value.items() if key != "attributes"}
    if isinstance(value, list):
        return [clean(item) for item in value]
    return value


def path(row: Row, name: str) -> Any:
    """A field of the row or of a parent: ``Product2.ProductCode``."""
    value: Any = row
    for part in name.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 1] + "…"
    return text or None


def _money(row: Row, name: str | None) -> Decimal | None:
    value = path(row, name) if name else None
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{name}: {value!r} is not an amount")
    try:
        # str() of a JSON float is its shortest exact form: 1299.99 stays 1299.99.
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"{name}: {value!r} is not an amount") from exc


def _field(row: Row, name: str | None) -> Any:
    return path(row, name) if name else None


def _common(row: Row) -> dict[str, Any]:
    return {
        "external_id": row.get("Id") or "",
        "updated_at": row.get("SystemModstamp"),
        "deleted": row.get("IsDeleted") is True,
        "raw": row,
    }


def _currency(row: Row, config: SalesforceConfig) -> Any:
    return row.get("CurrencyIsoCode") if config.multi_currency else config.currency


def _lead(row: Row, config: SalesforceConfig) -> LeadRecord:
    return LeadRecord(
        **_common(row),
        first_name=_text(row.get("FirstName")),
        last_name=_text(row.get("LastName")),
        email=_text(row.get("Email")),
        phone=_text(row.get("Phone")),
        company=_text(row.get("Company")),
        title=_text(row.get("Title")),
        country=_text(row.get("Country")),
        vendor_status=_text(row.get("Status")),
        source=_text(row.get("LeadSource")),
        vendor_created_at=row.get("CreatedDate"),
    )


def _campaign(row: Row, config: SalesforceConfig) -> CampaignRecord:
    return CampaignRecord(
        **_common(row),
        name=_text(row.get("Name")) or "",
        description=_text(row.get("Description")),
        kind=_text(row.get("Type")),
        status=_text(row.get("Status")),
        starts_on=row.get("StartDate"),
        ends_on=row.get("EndDate"),
    )


def _price_item(row: Row, config: SalesforceConfig) -> PriceItemRecord:
    common = _common(row)
    sku = _text(path(row, "Product2.ProductCode"))
    if sku is None:
        if not common["deleted"]:
            raise ValueError("sku: the product has no ProductCode")
        sku = _text(row.get("Product2Id")) or common["external_id"]
    list_price = _money(row, "UnitPrice")
    partner_cost = _money(row, config.partner_cost_field)
    discount = config.partner_discount_percent
    if discount is not None and list_price is not None:
        partner_cost = (list_price * (100 - discount) / 100).quantize(CENT)
    # A deactivated entry is off the price list: a tombstone until it is active again.
    common["deleted"] = common["deleted"] or row.get("IsActive") is False
    return PriceItemRecord(
        **common,
        sku=sku,
        name=_text(path(row, "Product2.Name")),
        currency=_currency(row, config) or "",
        list_price=list_price,
        partner_cost=partner_cost,
        discount=discount,
    )


def _deal(row: Row, config: SalesforceConfig) -> DealRecord:
    fields = config.deal_fields
    return DealRecord(
        **_common(row),
        customer=_text(_field(row, fields.customer)) or "",
        status=_text(_field(row, fields.status)),
        amount=_money(row, fields.amount),
        currency=_currency(row, config),
        close_on=_field(row, fields.close_on),
    )


NORMALIZERS: dict[Stream, Callable[[Row, SalesforceConfig], Record]] = {
    Stream.LEADS: _lead,
    Stream.CAMPAIGNS: _campaign,
    Stream.PRICE_LISTS: _price_item,
    Stream.DEALS: _deal,
}


def normalize(stream: Stream, row: Row, config: SalesforceConfig) -> Record | RecordFailure:
    raw = clean(row)
    if not isinstance(raw, dict):
        return RecordFailure(raw=raw, reason="not a Salesforce record")
    try:
        return NORMALIZERS[stream](raw, config)
    except (ValidationError, ValueError) as exc:
        return RecordFailure(raw=raw, reason=reason(exc))


def reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'record'}: {error['msg']}"
            for error in exc.errors()
        )
    return str(exc)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)]


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Short | None = None
    email: Short | None = None
    phone: Short | None = None


class ProductLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Name
    quantity: Annotated[int, Field(ge=1)] = 1
    price: Annotated[Decimal, Field(ge=0)] | None = None


class DealRegistration(BaseModel):
    """What ``register_deal`` takes: the end customer, the contact there, what is sold, for
    how much and when it is expected to close."""

    model_config = ConfigDict(extra="forbid")

    customer: Name
    customer_domain: Short | None = None
    customer_country: Short | None = None
    contact: Contact | None = None
    description: Annotated[str, StringConstraints(max_length=32000)] | None = None
    products: list[ProductLine] = Field(default_factory=list)
    # Fifteen digits at most: a float carries them exactly into Salesforce's JSON.
    amount: Annotated[Decimal, Field(ge=0, max_digits=15)] | None = None
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    close_on: date | None = None


def _product_line(line: ProductLine) -> str:
    price = f" @ {line.price}" if line.price is not None else ""
    return f"{line.sku} x {line.quantity}{price}"


def deal_body(deal: DealRegistration, config: SalesforceConfig) -> dict[str, Any]:
    """The deal as the fields of the vendor's object; parts it has no field for are left out.
    Raises ValueError for a currency a single-currency org cannot take."""
    fields = config.deal_fields
    contact = deal.contact or Contact()
    values: list[tuple[str | None, Any]] = [
        (fields.customer, deal.customer),
        (fields.customer_domain, deal.customer_domain),
        (fields.customer_country, deal.customer_country),
        (fields.contact_name, contact.name),
        (fields.contact_email, contact.email),
        (fields.contact_phone, contact.phone),
        (fields.description, deal.description),
        (fields.products, "\n".join(_product_line(line) for line in deal.products) or None),
        (fields.amount, float(deal.amount) if deal.amount is not None else None),
        (fields.close_on, deal.close_on.isoformat() if deal.close_on else None),
    ]
    body = {name: value for name, value in values if name is not None and value is not None}
    if config.multi_currency:
        if deal.currency:
            body["CurrencyIsoCode"] = deal.currency
    elif deal.currency and deal.currency != config.currency:
        raise ValueError(
            f"currency: this org keeps every amount in {config.currency}, not {deal.currency}"
        )
    return body


def modstamp(row: Row) -> datetime | None:
    """The row's ``SystemModstamp``, if it has a readable one."""
    stamp = row.get("SystemModstamp")
    if not isinstance(stamp, str):
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
