"""The vendor catalog: global, readable by every principal."""

from __future__ import annotations

import re
import uuid

from sqlalchemy.exc import IntegrityError

from pane.db.database import Transaction
from pane.errors import Conflict, Invalid, NotFound
from pane.ids import new_id
from pane.models import Vendor
from pane.services.lists import Key, ListQuery, Page

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


async def list_vendors(
    tx: Transaction,
    *,
    q: str | None,
    kind: str | None,
    cursor: str | None,
    limit: int,
) -> Page:
    """The catalog by name."""
    query = ListQuery(
        kind="vendors",
        source="vendors",
        columns="id, slug, name, kind, website",
        order=(Key("name", "name", str), Key("id", "id", uuid.UUID)),
    )
    query.equals("kind", kind).contains("lower(name || ' ' || slug)", q)
    return await query.page(tx, cursor=cursor, limit=limit)


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
