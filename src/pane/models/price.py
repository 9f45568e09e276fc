import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    Computed,
    ForeignKeyConstraint,
    Index,
    Numeric,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from pane.models.base import Base, VendorRow


class PriceList(VendorRow, Base):
    __tablename__ = "price_lists"
    __table_args__ = (
        UniqueConstraint("workspace_id", "vendor_id", "external_id"),
        Index("price_lists_vendor_principal_idx", "vendor_id", "id"),
    )

    name: Mapped[str]
    currency: Mapped[str | None] = mapped_column(CHAR(3))
    valid_from: Mapped[date | None]
    valid_to: Mapped[date | None]


class PriceItem(VendorRow, Base):
    """A line of a price list. Margin and margin % are generated columns: computed in one
    place, the database, and never out of step with the prices they come from."""

    __tablename__ = "price_items"
    __table_args__ = (
        CheckConstraint("list_price >= 0", name="list_price"),
        CheckConstraint("partner_cost >= 0", name="partner_cost"),
        CheckConstraint("msrp >= 0", name="msrp"),
        UniqueConstraint("workspace_id", "vendor_id", "external_id"),
        ForeignKeyConstraint(
            ["workspace_id", "price_list_id"],
            ["price_lists.workspace_id", "price_lists.id"],
            ondelete="CASCADE",
        ),
        Index("price_items_vendor_idx", "workspace_id", "vendor_id", "id"),
        Index("price_items_vendor_principal_idx", "vendor_id", "id"),
    )

    price_list_id: Mapped[uuid.UUID]
    sku: Mapped[str]
    name: Mapped[str | None]
    currency: Mapped[str] = mapped_column(CHAR(3))
    list_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    partner_cost: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    msrp: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    discount: Mapped[Decimal | None] = mapped_column(Numeric(9, 4))
    margin: Mapped[Decimal | None] = mapped_column(
        Numeric(18, 4), Computed("list_price - partner_cost", persisted=True)
    )
    # ELSE NULL spelled out: the database shows it so, and alembic compares the text.
    margin_pct: Mapped[Decimal | None] = mapped_column(
        Numeric(9, 4),
        Computed(
            "CASE WHEN list_price > 0"
            " THEN round((list_price - partner_cost) * 100 / list_price, 4) ELSE NULL END",
            persisted=True,
        ),
    )
    valid_from: Mapped[date | None]
    valid_to: Mapped[date | None]
    vendor_updated_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    deleted_at: Mapped[datetime | None]
    # what the sync's last write changed, {field: [old, new]}, for the event it writes
    last_changes: Mapped[dict[str, Any] | None]


# The best margin for a SKU first, across vendors.
Index("price_items_sku_idx", PriceItem.workspace_id, PriceItem.sku, PriceItem.margin.desc())
