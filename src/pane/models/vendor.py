import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, UniqueConstraint, func, text
from sqlalchemy.orm import Mapped, mapped_column

from pane.ids import new_id
from pane.models.base import Base, CreatedAt, Timestamps, utcnow


class Vendor(CreatedAt, Base):
    __tablename__ = "vendors"
    __table_args__ = (
        CheckConstraint("slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'", name="slug"),
        CheckConstraint("kind IN ('vendor', 'distributor')", name="kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    slug: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    kind: Mapped[str]
    website: Mapped[str | None]


Index(
    "vendors_name_trgm_idx",
    func.lower(Vendor.name).label("lower_name"),
    postgresql_using="gin",
    postgresql_ops={"lower_name": "gin_trgm_ops"},
)


# The reseller's own fields on a lead, which its vendor reads only where the link discloses
# them (``vendor_leads``, migration 0009); the status it always reads, and the vendor's own
# fields are its own.
DISCLOSABLE_LEAD_FIELDS = ("status_reason", "owner_id", "notes")


class LinkStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    NEEDS_REAUTH = "needs_reauth"
    ERROR = "error"


class VendorLink(Timestamps, Base):
    __tablename__ = "vendor_links"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'paused', 'needs_reauth', 'error')", name="status"),
        CheckConstraint("sync_interval_seconds >= 60", name="sync_interval_seconds"),
        CheckConstraint(
            "full_resync_interval_seconds >= 3600", name="full_resync_interval_seconds"
        ),
        CheckConstraint(
            f"disclosed_lead_fields <@ '{{{','.join(DISCLOSABLE_LEAD_FIELDS)}}}'::text[]",
            name="disclosed_lead_fields",
        ),
        UniqueConstraint("workspace_id", "vendor_id"),
        Index("vendor_links_vendor_idx", "vendor_id", "workspace_id", "status"),
        Index("vendor_links_due_idx", "next_sync_at", postgresql_where=text("status = 'active'")),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    vendor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("vendors.id"))
    connector: Mapped[str]
    config: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    credentials_encrypted: Mapped[str | None]
    status: Mapped[str] = mapped_column(default="active", server_default="active")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    sync_interval_seconds: Mapped[int] = mapped_column(default=900, server_default=text("900"))
    full_resync_interval_seconds: Mapped[int] = mapped_column(
        default=86400, server_default=text("86400")
    )
    next_sync_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_synced_at: Mapped[datetime | None]
    last_full_sync_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    sync_lease_owner: Mapped[uuid.UUID | None]
    sync_lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None]
    # The secret vendors sign pushed webhooks with, encrypted like the credentials, and during
    # a rotation the one before it, which verifies until ``webhook_previous_secret_until``.
    webhook_secret_encrypted: Mapped[str | None]
    webhook_previous_secret_encrypted: Mapped[str | None]
    webhook_previous_secret_until: Mapped[datetime | None]
    # Which of the reseller's own fields on a lead the vendor may read besides its status
    # (pane.services.disclosure), and who agreed to that, when.
    disclosed_lead_fields: Mapped[list[str]] = mapped_column(
        default=lambda: ["status_reason"], server_default="{status_reason}"
    )
    disclosure_agreed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    disclosure_agreed_at: Mapped[datetime | None]

    @property
    def has_credentials(self) -> bool:
        return self.credentials_encrypted is not None

    @property
    def has_webhook_secret(self) -> bool:
        return self.webhook_secret_encrypted is not None
