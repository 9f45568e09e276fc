import uuid
from typing import Any

from sqlalchemy import BigInteger, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from pane.models.base import Base, CreatedAt


class Event(CreatedAt, Base):
    """One change, written in the transaction that made it; ``seq`` is gap-free per workspace."""

    __tablename__ = "events"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[uuid.UUID]
    entity: Mapped[str]
    entity_id: Mapped[uuid.UUID]
    vendor_id: Mapped[uuid.UUID | None]
    action: Mapped[str]
    actor_type: Mapped[str]
    actor_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any]] = mapped_column(server_default="{}")


class AuditEntry(CreatedAt, Base):
    __tablename__ = "audit_log"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    actor_type: Mapped[str]
    actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str]
    target_type: Mapped[str | None]
    target_id: Mapped[str | None]
    ip: Mapped[str | None]
    request_id: Mapped[str | None]
    details: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
