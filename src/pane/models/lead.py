import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from pane.ids import new_id
from pane.models.base import Base, Timestamps


class Lead(Timestamps, Base):
    __tablename__ = "leads"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id"))
    external_id: Mapped[str]
    first_name: Mapped[str | None]
    last_name: Mapped[str | None]
    email: Mapped[str | None]
    phone: Mapped[str | None]
    company: Mapped[str | None]
    title: Mapped[str | None]
    country: Mapped[str | None]
    status: Mapped[str] = mapped_column(default="new")
    status_reason: Mapped[str | None]
    vendor_status: Mapped[str | None]
    score: Mapped[int | None]
    source: Mapped[str | None]
    campaign_ref: Mapped[str | None]
    owner_id: Mapped[uuid.UUID | None]
    notes: Mapped[str | None]
    accept_by: Mapped[datetime | None]
    vendor_created_at: Mapped[datetime | None]
    vendor_updated_at: Mapped[datetime | None]
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    deleted_at: Mapped[datetime | None]

    __mapper_args__ = {"version_id_col": version}
