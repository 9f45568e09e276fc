from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CHAR, Index, Numeric, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from pane.models.base import Base, VendorRow


class Deal(VendorRow, Base):
    """A deal registration, as the vendor holds it."""

    __tablename__ = "deals"
    __table_args__ = (
        UniqueConstraint("workspace_id", "vendor_id", "external_id"),
        Index("deals_vendor_idx", "workspace_id", "vendor_id", "id"),
        Index("deals_vendor_principal_idx", "vendor_id", "id"),
    )

    customer: Mapped[str]
    vendor_status: Mapped[str | None]
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str | None] = mapped_column(CHAR(3))
    close_on: Mapped[date | None]
    vendor_updated_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    version: Mapped[int] = mapped_column(server_default=text("1"))
    deleted_at: Mapped[datetime | None]
    # what the sync's last write changed, {field: [old, new]}, for the event it writes
    last_changes: Mapped[dict[str, Any] | None]
