"""Campaigns, price lists and items, assets; sync cursors and runs; link schedules.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Margin and margin % are generated columns: computed in one place, the database, and never
out of step with the prices they come from.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Row-level security as this migration wrote it: frozen here, so that no later change to pane
# can change what this migration does. Settings are read once per statement through initplans;
# an unset or empty setting matches no row.
WS = "(SELECT NULLIF(current_setting('pane.workspace_id', true), '')::uuid)"
VENDOR = "(SELECT NULLIF(current_setting('pane.vendor_id', true), '')::uuid)"
VISIBLE_WORKSPACES = "(SELECT pane_visible_workspaces())::uuid[]"


def _protect(table: str) -> list[str]:
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
    ]


def _workspace_rows(table: str) -> list[str]:
    """Rows only the workspace itself reads and writes."""
    return [
        *_protect(table),
        f"CREATE POLICY workspace_member ON {table} FOR ALL TO PUBLIC "
        f"USING (workspace_id = {WS}) WITH CHECK (workspace_id = {WS})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO pane_app",
    ]


def _vendor_rows(table: str) -> list[str]:
    """Rows that belong to a vendor: the workspace reads and writes them; the vendor reads its
    own in workspaces that actively link it. One permissive policy keeps index scans."""
    return [
        *_protect(table),
        f"CREATE POLICY visible_rows ON {table} FOR ALL TO PUBLIC "
        f"USING (workspace_id = ANY ({VISIBLE_WORKSPACES}) "
        f"AND ({VENDOR} IS NULL OR vendor_id = {VENDOR})) "
        f"WITH CHECK (workspace_id = {WS})",
        f"CREATE POLICY workspace_deletes ON {table} AS RESTRICTIVE FOR DELETE TO PUBLIC "
        f"USING (workspace_id = {WS})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO pane_app",
    ]


VENDOR_CONTENT = ["campaigns", "price_lists", "price_items", "assets"]
SYNC_TABLES = ["sync_cursors", "sync_runs"]

DDL = [
    """
    CREATE TABLE campaigns (
      workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      id uuid NOT NULL,
      vendor_id uuid NOT NULL REFERENCES vendors (id),
      external_id text NOT NULL,
      name text NOT NULL,
      description text,
      kind text,
      status text,
      starts_on date,
      ends_on date,
      channels text[] NOT NULL DEFAULT '{}',
      products text[] NOT NULL DEFAULT '{}',
      activated_at timestamptz,
      activated_by uuid,
      vendor_updated_at timestamptz,
      raw jsonb NOT NULL DEFAULT '{}',
      version integer NOT NULL DEFAULT 1,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz,
      PRIMARY KEY (workspace_id, id),
      UNIQUE (workspace_id, vendor_id, external_id)
    )
    """,
    "CREATE INDEX campaigns_vendor_idx ON campaigns (workspace_id, vendor_id, id)",
    "CREATE INDEX campaigns_vendor_principal_idx ON campaigns (vendor_id, id)",
    """
    CREATE TABLE price_lists (
      workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      id uuid NOT NULL,
      vendor_id uuid NOT NULL REFERENCES vendors (id),
      external_id text NOT NULL,
      name text NOT NULL,
      currency char(3),
      valid_from date,
      valid_to date,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (workspace_id, id),
      UNIQUE (workspace_id, vendor_id, external_id)
    )
    """,
    "CREATE INDEX price_lists_vendor_principal_idx ON price_lists (vendor_id, id)",
    """
    CREATE TABLE price_items (
      workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      id uuid NOT NULL,
      vendor_id uuid NOT NULL REFERENCES vendors (id),
      price_list_id uuid NOT NULL,
      external_id text NOT NULL,
      sku text NOT NULL,
      name text,
      currency char(3) NOT NULL,
      list_price numeric(18, 4) CHECK (list_price >= 0),
      partner_cost numeric(18, 4) CHECK (partner_cost >= 0),
      msrp numeric(18, 4) CHECK (msrp >= 0),
      discount numeric(9, 4),
      margin numeric(18, 4) GENERATED ALWAYS AS (list_price - partner_cost) STORED,
      margin_pct numeric(9, 4) GENERATED ALWAYS AS (
        CASE WHEN list_price > 0 THEN round((list_price - partner_cost) * 100 / list_price, 4) END
      ) STORED,
      valid_from date,
      valid_to date,
      raw jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz,
      PRIMARY KEY (workspace_id, id),
      UNIQUE (workspace_id, vendor_id, external_id),
      FOREIGN KEY (workspace_id, price_list_id) REFERENCES price_lists (workspace_id, id)
        ON DELETE CASCADE
    )
    """,
    "CREATE INDEX price_items_vendor_idx ON price_items (workspace_id, vendor_id, id)",
    "CREATE INDEX price_items_sku_idx ON price_items (workspace_id, sku, margin DESC)",
    "CREATE INDEX price_items_vendor_principal_idx ON price_items (vendor_id, id)",
    """
    CREATE TABLE assets (
      workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      id uuid NOT NULL,
      vendor_id uuid NOT NULL REFERENCES vendors (id),
      external_id text NOT NULL,
      title text NOT NULL,
      kind text,
      url text NOT NULL,
      language text,
      product text,
      vendor_updated_at timestamptz,
      raw jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz,
      PRIMARY KEY (workspace_id, id),
      UNIQUE (workspace_id, vendor_id, external_id)
    )
    """,
    "CREATE INDEX assets_vendor_idx ON assets (workspace_id, vendor_id, id)",
    "CREATE INDEX assets_vendor_principal_idx ON assets (vendor_id, id)",
    """
    CREATE TABLE sync_cursors (
      workspace_id uuid NOT NULL,
      link_id uuid NOT NULL,
      stream text NOT NULL,
      cursor text,
      updated_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (workspace_id, link_id, stream),
      FOREIGN KEY (workspace_id, link_id) REFERENCES vendor_links (workspace_id, id)
        ON DELETE CASCADE
    )
    """,
    """
    CREATE TABLE sync_runs (
      workspace_id uuid NOT NULL,
      id uuid NOT NULL,
      link_id uuid NOT NULL,
      trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'webhook', 'full_resync')),
      streams text[] NOT NULL,
      status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
      queued_at timestamptz NOT NULL DEFAULT now(),
      started_at timestamptz,
      finished_at timestamptz,
      fetched integer NOT NULL DEFAULT 0,
      created integer NOT NULL DEFAULT 0,
      updated integer NOT NULL DEFAULT 0,
      unchanged integer NOT NULL DEFAULT 0,
      deleted integer NOT NULL DEFAULT 0,
      failed integer NOT NULL DEFAULT 0,
      failures jsonb NOT NULL DEFAULT '[]',
      error text,
      PRIMARY KEY (workspace_id, id),
      FOREIGN KEY (workspace_id, link_id) REFERENCES vendor_links (workspace_id, id)
        ON DELETE CASCADE
    )
    """,
    "CREATE INDEX sync_runs_link_idx ON sync_runs (workspace_id, link_id, id DESC)",
    """
    ALTER TABLE vendor_links
      ADD COLUMN sync_interval_seconds integer NOT NULL DEFAULT 900
        CHECK (sync_interval_seconds >= 60),
      ADD COLUMN full_resync_interval_seconds integer NOT NULL DEFAULT 86400
        CHECK (full_resync_interval_seconds >= 3600),
      ADD COLUMN next_sync_at timestamptz NOT NULL DEFAULT now(),
      ADD COLUMN last_synced_at timestamptz,
      ADD COLUMN last_full_sync_at timestamptz,
      ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0
    """,
    "CREATE INDEX vendor_links_due_idx ON vendor_links (next_sync_at) WHERE status = 'active'",
]


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)
    for table in VENDOR_CONTENT:
        for statement in _vendor_rows(table):
            op.execute(statement)
    for table in SYNC_TABLES:
        for statement in _workspace_rows(table):
            op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS vendor_links_due_idx")
    op.execute(
        "ALTER TABLE vendor_links DROP COLUMN IF EXISTS sync_interval_seconds,"
        " DROP COLUMN IF EXISTS full_resync_interval_seconds, DROP COLUMN IF EXISTS next_sync_at,"
        " DROP COLUMN IF EXISTS last_synced_at, DROP COLUMN IF EXISTS last_full_sync_at,"
        " DROP COLUMN IF EXISTS consecutive_failures"
    )
    for table in ["sync_runs", "sync_cursors", "assets", "price_items", "price_lists", "campaigns"]:
        op.execute(f"DROP TABLE IF EXISTS {table}")
