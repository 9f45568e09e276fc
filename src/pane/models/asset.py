from datetime import datetime
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from pane.models.base import Base, VendorRow


class Asset(VendorRow, Base):
    __tablename__ = "assets"
    __table_args__ = (
        UniqueConstraint("workspace_id", "vendor_id", "external_id"),
        Index("assets_vendor_idx", "workspace_id", "vendor_id", "id"),
        Index("assets_vendor_principal_idx", "vendor_id", "id"),
    )

    title: Mapped[str]
    kind: Mapped[str | None]
    url: Mapped[str]
    language: Mapped[str | None]
    product: Mapped[str | None]
    vendor_updated_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    deleted_at: Mapped[datetime | None]
    # what the sync's last write changed, {field: [old, new]}, for the event it writes
    last_changes: Mapped[dict[str, Any] | None]
