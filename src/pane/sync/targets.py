"""Where each stream's records land: the table, its columns and how each is taken from a
normalized record. The one bulk-upsert path (``pane.sync.upsert``) writes its SQL from these,
so adding a stream means adding a target here, not another copy of the upsert."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pane.connectors.records import Record, Stream


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    pg_type: str
    value: Callable[[Any], Any]


def _field(name: str) -> Callable[[Any], Any]:
    return lambda record: getattr(record, name)


def _columns(*specs: tuple[str, str] | tuple[str, str, str]) -> tuple[Column, ...]:
    """(column, type) reads the record attribute of the same name; (column, type, attribute)
    reads another one."""
    return tuple(
        Column(spec[0], spec[1], _field(spec[-1] if len(spec) == 3 else spec[0])) for spec in specs
    )


@dataclass(frozen=True, slots=True)
class Target:
    stream: Stream
    table: str
    entity: str
    columns: tuple[Column, ...]
    versioned: bool = True
    # price items belong to a price list per currency, found or made for each page
    price_list_by_currency: bool = False

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]


_UPDATED = ("vendor_updated_at", "timestamptz", "updated_at")

TARGETS: dict[Stream, Target] = {
    Stream.LEADS: Target(
        Stream.LEADS,
        "leads",
        "lead",
        _columns(
            ("first_name", "text"),
            ("last_name", "text"),
            ("email", "text"),
            ("phone", "text"),
            ("company", "text"),
            ("title", "text"),
            ("country", "text"),
            ("vendor_status", "text"),
            ("score", "integer"),
            ("source", "text"),
            ("campaign_ref", "text"),
            ("vendor_created_at", "timestamptz"),
            ("accept_by", "timestamptz"),
            _UPDATED,
        ),
    ),
    Stream.CAMPAIGNS: Target(
        Stream.CAMPAIGNS,
        "campaigns",
        "campaign",
        _columns(
            ("name", "text"),
            ("description", "text"),
            ("kind", "text"),
            ("status", "text"),
            ("starts_on", "date"),
            ("ends_on", "date"),
            ("channels", "text[]"),
            ("products", "text[]"),
            _UPDATED,
        ),
    ),
    Stream.PRICE_LISTS: Target(
        Stream.PRICE_LISTS,
        "price_items",
        "price_item",
        _columns(
            ("sku", "text"),
            ("name", "text"),
            ("currency", "text"),
            ("list_price", "numeric"),
            ("partner_cost", "numeric"),
            ("msrp", "numeric"),
            ("discount", "numeric"),
            ("valid_from", "date"),
            ("valid_to", "date"),
        ),
        versioned=False,
        price_list_by_currency=True,
    ),
    Stream.ASSETS: Target(
        Stream.ASSETS,
        "assets",
        "asset",
        _columns(
            ("title", "text"),
            ("kind", "text"),
            ("url", "text"),
            ("language", "text"),
            ("product", "text"),
            _UPDATED,
        ),
        versioned=False,
    ),
    Stream.DEALS: Target(
        Stream.DEALS,
        "deals",
        "deal",
        _columns(
            ("customer", "text"),
            ("vendor_status", "text", "status"),
            ("amount", "numeric"),
            ("currency", "text"),
            ("close_on", "date"),
            _UPDATED,
        ),
    ),
}


def staged_row(target: Target, record: Record, new_id: Any, raw_json: str) -> tuple[Any, ...]:
    """One row of the staging table: the id if the row is new, external id, columns, raw,
    tombstone."""
    return (
        new_id,
        record.external_id,
        *(column.value(record) for column in target.columns),
        raw_json,
        record.deleted,
    )
