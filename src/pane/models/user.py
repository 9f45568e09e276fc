import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, func
from sqlalchemy.orm import Mapped, mapped_column

from pane.ids import new_id
from pane.models.base import Base, CreatedAt, Timestamps


class User(Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    email: Mapped[str]
    name: Mapped[str]
    password_hash: Mapped[str]
    disabled_at: Mapped[datetime | None]


# One account per address, whatever its case.
Index("users_email_key", func.lower(User.email), unique=True)


class RefreshToken(CreatedAt, Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("refresh_tokens_family_idx", "family_id"),
        Index("refresh_tokens_expires_idx", "expires_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    family_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, unique=True)
    workspace_hint: Mapped[uuid.UUID | None]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
