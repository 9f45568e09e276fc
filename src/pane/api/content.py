from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from pane.api.deps import Context, reads_rows
from pane.api.problems import AUTHENTICATED, problems
from pane.api.schemas import PageOf
from pane.api.vendors import NO_NUL, Cursor, Limit
from pane.principal import Permission, Principal
from pane.services import content
from pane.services.lists import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/v1", tags=["vendor content"], responses=problems(*AUTHENTICATED))

ContentReader = Annotated[Context[Principal], reads_rows(Permission.CONTENT_READ)]
Search = Annotated[str | None, Query(max_length=100, pattern=NO_NUL)]
Name = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]


class CampaignOut(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    vendor_id: uuid.UUID
    external_id: str
    name: str
    description: str | None
    kind: str | None
    status: str | None
    starts_on: date | None
    ends_on: date | None
    channels: list[str]
    products: list[str]
    activated_at: datetime | None
    vendor_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PriceItemOut(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    vendor_id: uuid.UUID
    price_list_id: uuid.UUID
    external_id: str
    sku: str
    name: str | None
    currency: str
    list_price: Decimal | None = Field(description="Money is a decimal string.")
    partner_cost: Decimal | None
    msrp: Decimal | None
    discount: Decimal | None
    margin: Decimal | None = Field(description="list_price - partner_cost")
    margin_pct: Decimal | None = Field(description="margin as a percentage of list_price")
    valid_from: date | None
    valid_to: date | None
    created_at: datetime
    updated_at: datetime


class PriceComparison(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    vendor_id: uuid.UUID
    vendor_name: str
    vendor_kind: str
    sku: str
    name: str | None
    currency: str
    list_price: Decimal | None
    partner_cost: Decimal | None
    msrp: Decimal | None
    margin: Decimal | None
    margin_pct: Decimal | None
    valid_from: date | None
    valid_to: date | None


class AssetOut(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    vendor_id: uuid.UUID
    external_id: str
    title: str
    kind: str | None
    url: str
    language: str | None
    product: str | None
    vendor_updated_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _page(page: Page) -> Response:
    return Response(page.to_json(), media_type="application/json")


@router.get("/campaigns", response_model=PageOf[CampaignOut], responses=problems(400))
async def list_campaigns(
    context: ContentReader,
    vendor_id: uuid.UUID | None = None,
    status: Name = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """Ready-made campaigns the linked vendors offer, newest first."""
    return _page(
        await content.list_campaigns(
            context.tx,
            principal=context.principal,
            vendor_id=vendor_id,
            status=status,
            cursor=cursor,
            limit=limit,
        )
    )


@router.get("/price-items", response_model=PageOf[PriceItemOut], responses=problems(400))
async def list_price_items(
    context: ContentReader,
    vendor_id: uuid.UUID | None = None,
    sku: Name = None,
    q: Annotated[
        str | None, Query(max_length=100, pattern=NO_NUL, description="Part of SKU or name.")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """Price list lines of every vendor and distributor, with margin and margin % worked out."""
    return _page(
        await content.list_price_items(
            context.tx,
            principal=context.principal,
            vendor_id=vendor_id,
            sku=sku,
            q=q,
            cursor=cursor,
            limit=limit,
        )
    )


@router.get("/price-items/compare", response_model=PageOf[PriceComparison])
async def compare_price_items(
    context: ContentReader,
    sku: Annotated[str, Query(min_length=1, max_length=200, pattern=NO_NUL)],
) -> Response:
    """The same SKU from every vendor and distributor that lists it: best margin first, then
    lowest cost. Answers every source in one page."""
    return _page(
        await content.compare_price_items(
            context.tx, principal=context.principal, sku=sku, limit=MAX_LIMIT
        )
    )


@router.get("/assets", response_model=PageOf[AssetOut], responses=problems(400))
async def list_assets(
    context: ContentReader,
    vendor_id: uuid.UUID | None = None,
    kind: Name = None,
    language: Annotated[str | None, Query(max_length=20, pattern=NO_NUL)] = None,
    q: Search = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """Collateral (datasheets, presentations, videos, logos) of the linked vendors."""
    return _page(
        await content.list_assets(
            context.tx,
            principal=context.principal,
            vendor_id=vendor_id,
            kind=kind,
            language=language,
            q=q,
            cursor=cursor,
            limit=limit,
        )
    )
