import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from pane.models.base import Base, VendorRow


class Campaign(VendorRow, Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        UniqueConstraint("workspace_id", "vendor_id", "external_id"),
        Index("campaigns_vendor_idx", "workspace_id", "vendor_id", "id"),
        Index("campaigns_vendor_principal_idx", "vendor_id", "id"),
    )

    name: Mapped[str]
    description: Mapped[str | None]
    kind: Mapped[str | None]
    status: Mapped[str | None]
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    channels: Mapped[list[str]] = mapped_column(server_default="{}")
    products: Mapped[list[str]] = mapped_column(server_default="{}")
    activated_at: Mapped[datetime | None]
    activated_by: Mapped[uuid.UUID | None]
    vendor_updated_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    version: Mapped[int] = mapped_column(server_default=text("1"))
    deleted_at: Mapped[datetime | None]
    # what the sync's last write changed, {field: [old, new]}, for the event it writes
    last_changes: Mapped[dict[str, Any] | None]
