import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from pane.models.base import Base, VendorRow


class Lead(VendorRow, Base):
    __tablename__ = "leads"
    __table_args__ = (
        CheckConstraint(
            "status IN ('new', 'accepted', 'rejected', 'working', 'converted', 'lost')",
            name="status",
        ),
        CheckConstraint("score BETWEEN 0 AND 100", name="score"),
        UniqueConstraint("workspace_id", "vendor_id", "external_id"),
        # The owner must be a member; when the membership goes, only owner_id is cleared
        # (workspace_id is part of the primary key).
        ForeignKeyConstraint(
            ["workspace_id", "owner_id"],
            ["memberships.workspace_id", "memberships.user_id"],
            ondelete="SET NULL (owner_id)",
        ),
        Index("leads_vendor_idx", "workspace_id", "vendor_id", "id"),
        Index("leads_vendor_principal_idx", "vendor_id", "id"),
        Index("leads_status_idx", "workspace_id", "status", "id"),
        Index("leads_updated_idx", "workspace_id", "updated_at", "id"),
        # A gin index cannot lead with a uuid without btree_gin: the workspace_id predicate
        # filters what the trigram search finds. The concatenation is parenthesised as
        # PostgreSQL shows it, so that alembic can compare the expression.
        Index(
            "leads_search_idx",
            literal_column(
                "lower((((((coalesce(first_name, '') || ' ') || coalesce(last_name, ''))"
                " || ' ') || coalesce(email, '')) || ' ') || coalesce(company, ''))"
            ).label("search"),
            postgresql_using="gin",
            postgresql_ops={"search": "gin_trgm_ops"},
        ),
    )

    first_name: Mapped[str | None]
    last_name: Mapped[str | None]
    email: Mapped[str | None]
    phone: Mapped[str | None]
    company: Mapped[str | None]
    title: Mapped[str | None]
    country: Mapped[str | None]
    status: Mapped[str] = mapped_column(default="new", server_default="new")
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
    raw: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))
    deleted_at: Mapped[datetime | None]
    # what the sync's last write changed, {field: [old, new]}, for the event it writes
    last_changes: Mapped[dict[str, Any] | None]

    __mapper_args__ = {"version_id_col": version}
