import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Index, false, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from pane.ids import new_id
from pane.models.base import Base


def _of_link() -> ForeignKeyConstraint:
    """Deleting a link takes its sync state with it."""
    return ForeignKeyConstraint(
        ["workspace_id", "link_id"],
        ["vendor_links.workspace_id", "vendor_links.id"],
        ondelete="CASCADE",
    )


class SyncCursor(Base):
    """Where each stream of a link resumes."""

    __tablename__ = "sync_cursors"
    __table_args__ = (_of_link(),)

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    link_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    stream: Mapped[str] = mapped_column(primary_key=True)
    cursor: Mapped[str | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SyncRun(Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        CheckConstraint(
            "trigger IN ('schedule', 'manual', 'webhook', 'full_resync')", name="trigger"
        ),
        CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name="status"),
        _of_link(),
        Index(
            "sync_runs_pending_idx",
            "workspace_id",
            "link_id",
            "id",
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    link_id: Mapped[uuid.UUID]
    trigger: Mapped[str]
    streams: Mapped[list[str]]
    status: Mapped[str] = mapped_column(server_default="queued")
    queued_at: Mapped[datetime] = mapped_column(server_default=func.now())
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    fetched: Mapped[int] = mapped_column(server_default=text("0"))
    created: Mapped[int] = mapped_column(server_default=text("0"))
    updated: Mapped[int] = mapped_column(server_default=text("0"))
    unchanged: Mapped[int] = mapped_column(server_default=text("0"))
    deleted: Mapped[int] = mapped_column(server_default=text("0"))
    failed: Mapped[int] = mapped_column(server_default=text("0"))
    failures: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    error: Mapped[str | None]
    full_resync: Mapped[bool] = mapped_column(server_default=false())
    # Per stream, the cursor reached and whether the stream is done, written with each page,
    # so a resumed run carries on where it stopped.
    progress: Mapped[dict[str, Any]] = mapped_column(server_default="{}")


# Newest runs of a link first.
Index("sync_runs_link_idx", SyncRun.workspace_id, SyncRun.link_id, SyncRun.id.desc())


class SyncSeen(Base):
    """What a full resync has seen so far: rows of the link's vendor missing from it at the
    end become tombstones. A table, not memory, so a resync survives a killed worker."""

    __tablename__ = "sync_seen"
    __table_args__ = (
        ForeignKeyConstraint(
            ["workspace_id", "run_id"],
            ["sync_runs.workspace_id", "sync_runs.id"],
            ondelete="CASCADE",
        ),
    )

    workspace_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    stream: Mapped[str] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(primary_key=True)
