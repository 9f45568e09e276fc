"""Where each stream's records land: the table, its columns and how each is taken from a
normalized record. The columns are derived from the record models of the connector SDK
(``pane.connectors.records``), the one declaration of a normalized field; the ORM models are
checked against them by a test. The one bulk-upsert path (``pane.sync.upsert``) writes its
SQL from these targets, so adding a stream means adding a target here, not another upsert."""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from operator import attrgetter
from typing import Any

from pydantic import AwareDatetime

from pane.catalogue import EventType
from pane.connectors.records import RECORD_TYPES, Record, Stream

# Record fields every stream has, which are not columns of their own.
_ENVELOPE = frozenset({"external_id", "deleted", "raw"})
# A record's `updated_at` is the vendor's own time, kept as `vendor_updated_at`.
_ALWAYS_RENAMED = {"updated_at": "vendor_updated_at"}

_PG_TYPES: dict[type, str] = {
    AwareDatetime: "timestamptz",
    str: "text",
    int: "integer",
    Decimal: "numeric",
    dt.date: "date",
    dt.datetime: "timestamptz",
    bool: "boolean",
}


def pg_type(annotation: Any) -> str:
    """The PostgreSQL type of a record field: ``str | None`` is text, ``list[str]`` text[]."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return pg_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return pg_type(inner)
    if origin is list:
        return pg_type(typing.get_args(annotation)[0]) + "[]"
    if isinstance(annotation, type):
        for python_type, name in _PG_TYPES.items():
            if issubclass(annotation, python_type):
                return name
    raise TypeError(f"no PostgreSQL type for record fields of type {annotation!r}")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    pg_type: str
    field: str  # the record field it is taken from


@dataclass(frozen=True, slots=True)
class Target:
    stream: Stream
    table: str
    entity: str
    columns: tuple[Column, ...]
    versioned: bool = True
    # price items belong to a price list per currency, found or made for each page
    price_list_by_currency: bool = False
    # a record's external id, columns and tombstone flag in one call (staged_row)
    staged_values: Callable[[Record], tuple[Any, ...]] = field(
        init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        fields = ("external_id", *(column.field for column in self.columns), "deleted")
        object.__setattr__(self, "staged_values", attrgetter(*fields))

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def event(self, what: str) -> EventType:
        return EventType(f"{self.entity}.{what}")


def _columns(record: type[Record], renamed: dict[str, str]) -> tuple[Column, ...]:
    names = {**_ALWAYS_RENAMED, **renamed}
    return tuple(
        Column(names.get(name, name), pg_type(info.annotation), name)
        for name, info in record.model_fields.items()
        if name not in _ENVELOPE
    )


def _target(
    stream: Stream,
    table: str,
    entity: str,
    *,
    renamed: dict[str, str] | None = None,
    **options: bool,
) -> Target:
    columns = _columns(RECORD_TYPES[stream], renamed or {})
    return Target(stream, table, entity, columns, **options)


TARGETS: dict[Stream, Target] = {
    Stream.LEADS: _target(Stream.LEADS, "leads", "lead"),
    Stream.CAMPAIGNS: _target(Stream.CAMPAIGNS, "campaigns", "campaign"),
    Stream.PRICE_LISTS: _target(
        Stream.PRICE_LISTS,
        "price_items",
        "price_item",
        versioned=False,
        price_list_by_currency=True,
    ),
    Stream.ASSETS: _target(Stream.ASSETS, "assets", "asset", versioned=False),
    # the vendor's word for a registration's state; pane's own status is the reseller's
    Stream.DEALS: _target(Stream.DEALS, "deals", "deal", renamed={"status": "vendor_status"}),
}


def staged_columns(target: Target) -> list[str]:
    """The staging table's columns in the order ``staged_row`` gives them."""
    return ["id", "raw", "external_id", *target.names, "deleted"]


def staged_row(target: Target, record: Record, new_id: Any, raw_json: str) -> tuple[Any, ...]:
    """One row of the staging table: the id if the row is new, raw, external id, columns,
    tombstone."""
    return (new_id, raw_json, *target.staged_values(record))
