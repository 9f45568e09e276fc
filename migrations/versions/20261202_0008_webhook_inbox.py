"""Vendors push: each link's webhook signing secrets, and the inbox deliveries land in.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

A link keeps its signing secret encrypted like its credentials, and during a rotation the
previous one until a moment after which it no longer verifies. ``webhook_inbox`` holds each
delivery as it was received (the exact body, the headers that matter), committed before the
vendor gets its 2xx and deduplicated on the vendor's own id per link; what applying it made is
written back to the same row. ``pane_webhook_workspace()`` is the receiver's one narrow view
across workspaces: which workspace a link id belongs to, nothing else (a webhook carries no
bearer credentials; its signature, checked inside the workspace, is its authentication).

What this migration needs is written out here, not imported from pane.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WS = "(SELECT NULLIF(current_setting('pane.workspace_id', true), '')::uuid)"

DDL = [
    "ALTER TABLE vendor_links ADD COLUMN webhook_secret_encrypted text,"
    " ADD COLUMN webhook_previous_secret_encrypted text,"
    " ADD COLUMN webhook_previous_secret_until timestamptz",
    """
    CREATE TABLE webhook_inbox (
      workspace_id uuid NOT NULL,
      id uuid NOT NULL,
      link_id uuid NOT NULL,
      webhook_id text NOT NULL,
      received_at timestamptz NOT NULL DEFAULT now(),
      headers jsonb NOT NULL DEFAULT '{}',
      body bytea NOT NULL,
      status text NOT NULL DEFAULT 'received',
      attempts integer NOT NULL DEFAULT 0,
      error text,
      processed_at timestamptz,
      created integer NOT NULL DEFAULT 0,
      updated integer NOT NULL DEFAULT 0,
      unchanged integer NOT NULL DEFAULT 0,
      failed integer NOT NULL DEFAULT 0,
      failures jsonb NOT NULL DEFAULT '[]',
      records uuid[] NOT NULL DEFAULT '{}',
      CONSTRAINT webhook_inbox_pkey PRIMARY KEY (workspace_id, id),
      CONSTRAINT webhook_inbox_workspace_id_link_id_fkey FOREIGN KEY (workspace_id, link_id)
        REFERENCES vendor_links (workspace_id, id) ON DELETE CASCADE,
      CONSTRAINT webhook_inbox_workspace_id_link_id_webhook_id_key
        UNIQUE (workspace_id, link_id, webhook_id),
      CONSTRAINT webhook_inbox_status_check
        CHECK (status IN ('received', 'held', 'applied', 'failed'))
    )
    """,
    "CREATE INDEX webhook_inbox_link_idx ON webhook_inbox (workspace_id, link_id, id DESC)",
    "ALTER TABLE webhook_inbox ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE webhook_inbox FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY workspace_member ON webhook_inbox FOR ALL TO PUBLIC "
    f"USING (workspace_id = {WS}) WITH CHECK (workspace_id = {WS})",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_inbox TO pane_app",
    """
    CREATE FUNCTION pane_webhook_workspace(p_link uuid) RETURNS uuid
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT l.workspace_id FROM vendor_links l WHERE l.id = p_link
    $$
    """,
    "REVOKE ALL ON FUNCTION pane_webhook_workspace(uuid) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION pane_webhook_workspace(uuid) TO pane_app",
]


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS pane_webhook_workspace(uuid)")
    op.execute("DROP TABLE IF EXISTS webhook_inbox")
    op.execute(
        "ALTER TABLE vendor_links DROP COLUMN IF EXISTS webhook_secret_encrypted,"
        " DROP COLUMN IF EXISTS webhook_previous_secret_encrypted,"
        " DROP COLUMN IF EXISTS webhook_previous_secret_until"
    )
