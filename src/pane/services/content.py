"""Vendor content read side: campaigns, price items (with margins) and assets.

Like lead lists, these go from SQL rows straight to JSON, newest first in keyset pages,
scoped by the principal's own column so plans start from an index that leads with it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pane.db.database import Transaction
from pane.principal import Principal, VendorPrincipal
from pane.services.pagination import Page, decode_cursor, encode_cursor

CAMPAIGN_COLUMNS = (
    "id, workspace_id, vendor_id, external_id, name, description, kind, status, starts_on,"
    " ends_on, channels, products, activated_at, vendor_updated_at, created_at, updated_at"
)
PRICE_ITEM_COLUMNS = (
    "id, workspace_id, vendor_id, price_list_id, external_id, sku, name, currency, list_price,"
    " partner_cost, msrp, discount, margin, margin_pct, valid_from, valid_to, created_at,"
    " updated_at"
)
ASSET_COLUMNS = (
    "id, workspace_id, vendor_id, external_id, title, kind, url, language, product,"
    " vendor_updated_at, created_at, updated_at"
)


def _escape_like(text: str) -> str:
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class _Query:
    """WHERE clauses and their positional arguments, built up one filter at a time."""

    principal: Principal
    args: list[Any]
    where: list[str]

    @classmethod
    def scoped(cls, principal: Principal, alias: str = "") -> _Query:
        query = cls(principal, [], [])
        if isinstance(principal, VendorPrincipal):
            query.add(f"{alias}vendor_id = {{}}", principal.vendor_id)
        else:
            query.add(f"{alias}workspace_id = {{}}", principal.workspace_id)
        query.where.append(f"{alias}deleted_at IS NULL")
        return query

    def add(self, clause: str, value: Any) -> None:
        self.args.append(value)
        self.where.append(clause.format(f"${len(self.args)}"))

    def sql(self, table: str, columns: str, *, order: str, limit: int) -> str:
        self.args.append(limit + 1)
        return (
            f"SELECT {columns} FROM {table} WHERE {' AND '.join(self.where)}"  # noqa: S608
            f" ORDER BY {order} LIMIT ${len(self.args)}"
        )


async def _page(
    tx: Transaction,
    query: _Query,
    *,
    table: str,
    columns: str,
    cursor: str | None,
    limit: int,
) -> Page:
    if cursor:
        (after,) = decode_cursor(table, cursor, (uuid.UUID,))
        query.add("id < {}", after)
    rows = await tx.connection.fetch(
        query.sql(table, columns, order="id DESC", limit=limit), *query.args
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(table, [rows[-1]["id"]])
    return Page(items=[dict(row) for row in rows], next_cursor=next_cursor)


async def list_campaigns(
    tx: Transaction,
    *,
    principal: Principal,
    vendor_id: uuid.UUID | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page:
    query = _Query.scoped(principal)
    if vendor_id is not None:
        query.add("vendor_id = {}", vendor_id)
    if status is not None:
        query.add("status = {}", status)
    return await _page(
        tx, query, table="campaigns", columns=CAMPAIGN_COLUMNS, cursor=cursor, limit=limit
    )


async def list_price_items(
    tx: Transaction,
    *,
    principal: Principal,
    vendor_id: uuid.UUID | None,
    sku: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Page:
    query = _Query.scoped(principal)
    if vendor_id is not None:
        query.add("vendor_id = {}", vendor_id)
    if sku is not None:
        query.add("sku = {}", sku)
    if q:
        query.add("lower(sku || ' ' || coalesce(name, '')) LIKE {}", f"%{_escape_like(q)}%")
    return await _page(
        tx,
        query,
        table="price_items",
        columns=PRICE_ITEM_COLUMNS,
        cursor=cursor,
        limit=limit,
    )


async def compare_price_items(
    tx: Transaction, *, principal: Principal, sku: str, limit: int
) -> list[dict[str, Any]]:
    """One SKU across every vendor and distributor: best margin first, then lowest cost."""
    query = _Query.scoped(principal, alias="p.")
    query.add("p.sku = {}", sku)
    where = " AND ".join(query.where)
    query.args.append(limit)
    # fixed clauses only; every value travels as a parameter
    sql = (
        "SELECT p.id, p.workspace_id, p.vendor_id,"  # noqa: S608
        " v.name AS vendor_name, v.kind AS vendor_kind, p.sku, p.name, p.currency,"
        " p.list_price, p.partner_cost, p.msrp, p.margin, p.margin_pct, p.valid_from, p.valid_to"
        " FROM price_items p JOIN vendors v ON v.id = p.vendor_id"
        f" WHERE {where}"
        " ORDER BY p.margin DESC NULLS LAST, p.partner_cost ASC NULLS LAST, p.id"
        f" LIMIT ${len(query.args)}"
    )
    rows = await tx.connection.fetch(sql, *query.args)
    return [dict(row) for row in rows]


async def list_assets(
    tx: Transaction,
    *,
    principal: Principal,
    vendor_id: uuid.UUID | None,
    kind: str | None,
    language: str | None,
    q: str | None,
    cursor: str | None,
    limit: int,
) -> Page:
    query = _Query.scoped(principal)
    if vendor_id is not None:
        query.add("vendor_id = {}", vendor_id)
    if kind is not None:
        query.add("kind = {}", kind)
    if language is not None:
        query.add("language = {}", language)
    if q:
        query.add("lower(title || ' ' || coalesce(product, '')) LIKE {}", f"%{_escape_like(q)}%")
    return await _page(tx, query, table="assets", columns=ASSET_COLUMNS, cursor=cursor, limit=limit)
