from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from pane.api.deps import AnyContext
from pane.api.problems import AUTHENTICATED, problems
from pane.api.schemas import PageOf, VendorOut
from pane.services import vendors
from pane.services.lists import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/v1/vendors", tags=["vendors"], responses=problems(*AUTHENTICATED))

NO_NUL = r"^[^\x00]*$"
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size, at most 200.")]
Cursor = Annotated[str | None, Query(max_length=512, description="`next_cursor` of the last page.")]


@router.get("", response_model=PageOf[VendorOut], responses=problems(400))
async def list_vendors(
    context: AnyContext,
    q: Annotated[
        str | None, Query(max_length=100, pattern=NO_NUL, description="Part of name or slug.")
    ] = None,
    kind: Literal["vendor", "distributor"] | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """The catalog of vendors and distributors a workspace can link, by name."""
    page = await vendors.list_vendors(context.tx, q=q, kind=kind, cursor=cursor, limit=limit)
    return Response(page.to_json(), media_type="application/json")


@router.get("/{vendor_id}", responses=problems(404))
async def get_vendor(vendor_id: uuid.UUID, context: AnyContext) -> VendorOut:
    vendor = await vendors.get_vendor(context.tx, vendor_id=vendor_id)
    return VendorOut.model_validate(vendor, from_attributes=True)
