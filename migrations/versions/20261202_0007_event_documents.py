"""Each event keeps its wire form, rendered once when it is appended.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

``events.document`` (``json``) is the event exactly as the change feed and its stream send
it (and, next, webhooks), written by the one event writer in the statement that appends the
event; it replaces ``data``, which it contains. An event never changes, so rendering it at
every read was repeated work: turning the stored ``jsonb`` back into text alone was a third
of PostgreSQL's time per page of the feed, and building each item in Python most of pane's.

The rendering below is a frozen copy of ``pane.services.events``'s, for the events already
there; what this migration needs is written out here, not imported from pane.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def instant_text(moment: str) -> str:
    """SQL rendering the timestamptz ``moment`` as pydantic writes a UTC datetime: in UTC,
    microseconds only when there are any, then ``Z``."""
    utc = f"({moment}) AT TIME ZONE 'UTC'"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN date_trunc('second', {utc}) = {utc} THEN ''"
        f" ELSE to_char({utc}, '.US') END || 'Z'"
    )


DOCUMENT = f"""(
  '{{"seq":' || seq || ',"id":"' || id || '","type":' || to_json(type)
  || ',"workspace_id":"' || workspace_id || '","entity_id":"' || entity_id
  || '","vendor_id":' || coalesce('"' || vendor_id || '"', 'null')
  || ',"actor":{{"type":' || to_json(actor_type)
  || ',"id":' || coalesce('"' || actor_id || '"', 'null')
  || '}},"occurred_at":"' || {instant_text("created_at")} || '","data":' || data::text || '}}'
)::json"""


def upgrade() -> None:
    # One rewrite of the table, converting each row in place (no row-level security applies
    # to a rewrite). NOT NULL is set again after the rename so that it is named for the new
    # column where PostgreSQL names it (18 and later), as the models create it.
    op.execute(
        "ALTER TABLE events ALTER COLUMN data DROP DEFAULT, ALTER COLUMN data DROP NOT NULL,"
        f" ALTER COLUMN data TYPE json USING {DOCUMENT}"
    )
    op.execute("ALTER TABLE events RENAME COLUMN data TO document")
    op.execute("ALTER TABLE events ALTER COLUMN document SET NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE events ALTER COLUMN document DROP NOT NULL")
    op.execute("ALTER TABLE events RENAME COLUMN document TO data")
    op.execute(
        "ALTER TABLE events ALTER COLUMN data TYPE jsonb USING (data -> 'data')::jsonb,"
        " ALTER COLUMN data SET DEFAULT '{}', ALTER COLUMN data SET NOT NULL"
    )
