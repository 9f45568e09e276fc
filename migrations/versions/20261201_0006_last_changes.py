"""Each synced row remembers what its last write changed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

``last_changes`` (``{field: [old, new]}``) is set by the bulk upsert in the same statement
that changes the row, where the old values are at hand, and handed on to the event it writes:
the alternative, reading the old rows first by the page's keys, was planned as a scan of all
the vendor's rows whenever a fast-filling table's statistics lagged behind it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYNCED_TABLES = ("leads", "campaigns", "price_items", "assets", "deals")


def upgrade() -> None:
    for table in SYNCED_TABLES:
        op.execute(f"ALTER TABLE {table} ADD COLUMN last_changes jsonb")


def downgrade() -> None:
    for table in SYNCED_TABLES:
        op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS last_changes")
