"""The worker's view of webhook deliveries that were never applied.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

A delivery is applied by a job asked for through the outbox; a job that ran out of tries (the
database away for minutes) leaves its delivery ``received`` with nothing queued for it.
``pane_stranded_webhooks()`` lists such deliveries across workspaces (ids only, those received
more than a while ago), for the worker to queue again; the index keeps that look cheap, as it
covers only deliveries not yet applied.

What this migration needs is written out here, not imported from pane.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DDL = [
    "CREATE INDEX webhook_inbox_received_idx ON webhook_inbox (received_at)"
    " WHERE status = 'received'",
    """
    CREATE FUNCTION pane_stranded_webhooks(p_limit integer, p_older_than interval)
    RETURNS TABLE (workspace_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT d.workspace_id, d.id FROM webhook_inbox d
      WHERE d.status = 'received' AND d.received_at < now() - p_older_than
      ORDER BY d.received_at
      LIMIT p_limit
    $$
    """,
    "REVOKE ALL ON FUNCTION pane_stranded_webhooks(integer, interval) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION pane_stranded_webhooks(integer, interval) TO pane_app",
]


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS pane_stranded_webhooks(integer, interval)")
    op.execute("DROP INDEX IF EXISTS webhook_inbox_received_idx")
