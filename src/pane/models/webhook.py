import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pane.ids import new_id
from pane.models.base import Base


class WebhookDelivery(Base):
    """One webhook a vendor pushed to a link, as received (committed before the vendor's 2xx),
    and what applying it made."""

    __tablename__ = "webhook_inbox"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "link_id"],
            ["vendor_links.workspace_id", "vendor_links.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("workspace_id", "link_id", "webhook_id"),
        CheckConstraint("status IN ('received', 'held', 'applied', 'failed')", name="status"),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    link_id: Mapped[uuid.UUID]
    # The vendor's id for the delivery: what its retries of it share.
    webhook_id: Mapped[str]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    headers: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(server_default="received")
    attempts: Mapped[int] = mapped_column(server_default=text("0"))
    error: Mapped[str | None]
    processed_at: Mapped[datetime | None]
    created: Mapped[int] = mapped_column(server_default=text("0"))
    updated: Mapped[int] = mapped_column(server_default=text("0"))
    unchanged: Mapped[int] = mapped_column(server_default=text("0"))
    failed: Mapped[int] = mapped_column(server_default=text("0"))
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    # The rows it created or changed.
    records: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), server_default="{}")


# Deliveries not yet applied, oldest first (the worker queues again those left behind).
Index(
    "webhook_inbox_received_idx",
    WebhookDelivery.received_at,
    postgresql_where=text("status = 'received'"),
)
# Newest deliveries of a link first.
Index(
    "webhook_inbox_link_idx",
    WebhookDelivery.workspace_id,
    WebhookDelivery.link_id,
    WebhookDelivery.id.desc(),
)
