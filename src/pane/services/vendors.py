"""The vendor catalog: global, readable by every principal."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import or_, select, tuple_
from sqlalchemy.exc import IntegrityError

from pane.db.database import Transaction
from pane.errors import Conflict, Invalid, NotFound
from pane.ids import new_id
from pane.models import Vendor
from pane.services.pagination import Page, decode_cursor, encode_cursor

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def vendor_json(vendor: Vendor) -> dict[str, Any]:
    return {
        "id": vendor.id,
        "slug": vendor.slug,
        "name": vendor.name,
        "kind": vendor.kind,
        "website": vendor.website,
    }


async def list_vendors(
    tx: Transaction,
    *,
    q: str | None,
    kind: str | None,
    cursor: str | None,
    limit: int,
) -> Page:
    query = select(Vendor).order_by(Vendor.name, Vendor.id).limit(limit + 1)
    if q:
        pattern = f"%{_escape_like(q)}%"
        query = query.where(or_(Vendor.name.ilike(pattern), Vendor.slug.ilike(pattern)))
    if kind:
        query = query.where(Vendor.kind == kind)
    if cursor:
        name, last_id = decode_cursor("vendors", cursor, (str, uuid.UUID))
        query = query.where(tuple_(Vendor.name, Vendor.id) > tuple_(name, last_id))
    vendors = list(await tx.session.scalars(query))
    next_cursor = None
    if len(vendors) > limit:
        vendors = vendors[:limit]
        next_cursor = encode_cursor("vendors", [vendors[-1].name, vendors[-1].id])
    return Page(items=[vendor_json(vendor) for vendor in vendors], next_cursor=next_cursor)


async def get_vendor(tx: Transaction, *, vendor_id: uuid.UUID) -> Vendor:
    vendor = await tx.session.get(Vendor, vendor_id)
    if vendor is None:
        raise NotFound(f"no vendor {vendor_id}")
    return vendor


async def add_vendor(
    tx: Transaction, *, slug: str, name: str, kind: str, website: str | None
) -> Vendor:
    if not _SLUG.match(slug):
        raise Invalid(f"slug {slug!r} must be lowercase letters, digits and dashes")
    if kind not in ("vendor", "distributor"):
        raise Invalid(f"kind must be vendor or distributor, not {kind!r}")
    vendor = Vendor(id=new_id(), slug=slug, name=name, kind=kind, website=website)
    tx.session.add(vendor)
    try:
        await tx.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"the catalog already has a vendor with slug {slug!r}") from exc
    return vendor


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
