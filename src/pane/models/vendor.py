import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from pane.ids import new_id
from pane.models.base import Base, Timestamps, utcnow


class Vendor(Base):
    __tablename__ = "vendors"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    kind: Mapped[str]
    website: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class VendorLink(Timestamps, Base):
    __tablename__ = "vendor_links"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id"))
    connector: Mapped[str]
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    credentials_encrypted: Mapped[str | None]
    status: Mapped[str] = mapped_column(default="active")
    created_by: Mapped[uuid.UUID | None]
    sync_interval_seconds: Mapped[int] = mapped_column(default=900)
    full_resync_interval_seconds: Mapped[int] = mapped_column(default=86400)
    next_sync_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_synced_at: Mapped[datetime | None]
    last_full_sync_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None]
