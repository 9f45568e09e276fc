"""Vendor content read side: campaigns, price items (with margins) and assets.

Like lead lists, these go from SQL rows straight to JSON, newest first in keyset pages,
scoped by the principal's own column so plans start from an index that leads with it."""

from __future__ import annotations

import uuid

from pane.db.database import Transaction
from pane.principal import Principal
from pane.services.lists import BY_ID, ListQuery, Page

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
COMPARISON_COLUMNS = (
    "p.id, p.workspace_id, p.vendor_id, v.name AS vendor_name, v.kind AS vendor_kind, p.sku,"
    " p.name, p.currency, p.list_price, p.partner_cost, p.msrp, p.margin, p.margin_pct,"
    " p.valid_from, p.valid_to"
)


def _newest_first(principal: Principal, table: str, columns: str) -> ListQuery:
    return ListQuery.scoped(
        principal, kind=table, source=table, columns=columns, order=BY_ID, descending=True
    )


async def list_campaigns(
    tx: Transaction,
    *,
    principal: Principal,
    vendor_id: uuid.UUID | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page:
    query = _newest_first(principal, "campaigns", CAMPAIGN_COLUMNS)
    query.equals("vendor_id", vendor_id).equals("status", status)
    return await query.page(tx, cursor=cursor, limit=limit)


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
    query = _newest_first(principal, "price_items", PRICE_ITEM_COLUMNS)
    query.equals("vendor_id", vendor_id).equals("sku", sku)
    query.contains("lower(sku || ' ' || coalesce(name, ''))", q)
    return await query.page(tx, cursor=cursor, limit=limit)


async def compare_price_items(
    tx: Transaction, *, principal: Principal, sku: str, limit: int
) -> Page:
    """One SKU across every vendor and distributor: best margin first, then lowest cost, in one
    page."""
    query = ListQuery.scoped(
        principal,
        kind="price-comparison",
        source="price_items p JOIN vendors v ON v.id = p.vendor_id",
        columns=COMPARISON_COLUMNS,
        order=BY_ID,
        alias="p.",
    )
    query.equals("p.sku", sku)
    items = await query.ranked(
        tx,
        ranking="p.margin DESC NULLS LAST, p.partner_cost ASC NULLS LAST, p.id",
        limit=limit,
    )
    return Page(items=items, next_cursor=None)


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
    query = _newest_first(principal, "assets", ASSET_COLUMNS)
    query.equals("vendor_id", vendor_id).equals("kind", kind).equals("language", language)
    query.contains("lower(title || ' ' || coalesce(product, ''))", q)
    return await query.page(tx, cursor=cursor, limit=limit)
