import uuid
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, text
from sqlalchemy.orm import Mapped, mapped_column

from pane.models.base import Base, CreatedAt


class Event(CreatedAt, Base):
    """One change, written in the transaction that made it; ``seq`` is gap-free per workspace
    and ``type`` one of ``pane.catalogue.EventType``."""

    __tablename__ = "events"
    # BRIN: events arrive in time order, so retention finds old ones at almost no write cost
    __table_args__ = (Index("events_created_idx", "created_at", postgresql_using="brin"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[uuid.UUID]
    type: Mapped[str]
    entity_id: Mapped[uuid.UUID]
    vendor_id: Mapped[uuid.UUID | None]
    actor_type: Mapped[str]
    actor_id: Mapped[uuid.UUID | None]
    # The event as the feed and its stream send it (``pane.catalogue.Event``),
    # rendered once by the event writer: an event never changes.
    document: Mapped[dict[str, Any]] = mapped_column(JSON)


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


class OutboxEntry(CreatedAt, Base):
    """A job asked for in a committed transaction, until it is on the job queue."""

    __tablename__ = "outbox"
    __table_args__ = (Index("outbox_created_idx", "created_at"),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    job: Mapped[str]
    job_id: Mapped[str | None]
    kwargs: Mapped[dict[str, Any]] = mapped_column(server_default="{}")
    attempts: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    last_error: Mapped[str | None]
