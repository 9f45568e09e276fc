"""The sync engine: deal registrations, the vendor's own lead status, per-link sync leases,
full-resync bookkeeping, and the scheduler's one narrow path across workspaces.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26

``pane_due_links()`` is the only way the runtime role sees across workspaces. It is
SECURITY DEFINER (owned by the schema owner, which bypasses RLS), returns nothing but the ids of
active links that are due or have a sync asked for, and the worker then enters each link's
workspace like any request would.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
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


DDL = [
    # Time-ordered ids for rows the bulk path creates in SQL (PostgreSQL 15 has no uuidv7()):
    # 48 bits of milliseconds, then random bits with the version and variant set.
    """
    CREATE FUNCTION pane_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
      SELECT encode(
        set_bit(set_bit(
          overlay(uuid_send(gen_random_uuid()) PLACING
                  substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint)
                            FROM 3)
                  FROM 1 FOR 6),
          52, 1), 53, 1),
        'hex')::uuid
    $$
    """,
    "GRANT EXECUTE ON FUNCTION pane_uuid7() TO pane_app",
    "ALTER TABLE leads ADD COLUMN vendor_status text",
    """
    CREATE TABLE deals (
      workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      id uuid NOT NULL,
      vendor_id uuid NOT NULL REFERENCES vendors (id),
      external_id text NOT NULL,
      customer text NOT NULL,
      vendor_status text,
      amount numeric(18, 4),
      currency char(3),
      close_on date,
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
    "CREATE INDEX deals_vendor_idx ON deals (workspace_id, vendor_id, id)",
    "CREATE INDEX deals_vendor_principal_idx ON deals (vendor_id, id)",
    # What a full resync has seen so far: rows of the link's vendor missing from it at the end
    # become tombstones. Kept in a table, not in memory, so a resync survives a killed worker.
    """
    CREATE TABLE sync_seen (
      workspace_id uuid NOT NULL,
      run_id uuid NOT NULL,
      stream text NOT NULL,
      external_id text NOT NULL,
      PRIMARY KEY (workspace_id, run_id, stream, external_id),
      FOREIGN KEY (workspace_id, run_id) REFERENCES sync_runs (workspace_id, id)
        ON DELETE CASCADE
    )
    """,
    """
    ALTER TABLE vendor_links
      ADD COLUMN sync_lease_owner uuid,
      ADD COLUMN sync_lease_until timestamptz,
      ADD COLUMN last_error text
    """,
    # progress: per stream, the cursor reached and whether the stream is done, written with
    # each page, so a resumed run (or a resumed full resync) carries on where it stopped.
    """
    ALTER TABLE sync_runs
      ADD COLUMN full_resync boolean NOT NULL DEFAULT false,
      ADD COLUMN progress jsonb NOT NULL DEFAULT '{}'
    """,
    "CREATE INDEX sync_runs_pending_idx ON sync_runs (workspace_id, link_id, id)"
    " WHERE status IN ('queued', 'running')",
    """
    CREATE FUNCTION pane_due_links(p_limit integer)
    RETURNS TABLE (workspace_id uuid, link_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT l.workspace_id, l.id FROM vendor_links l
      WHERE l.status = 'active'
        AND (l.sync_lease_until IS NULL OR l.sync_lease_until < now())
        AND (l.next_sync_at <= now()
             OR EXISTS (SELECT 1 FROM sync_runs r
                        WHERE r.workspace_id = l.workspace_id AND r.link_id = l.id
                          AND r.status IN ('queued', 'running')))
      ORDER BY l.next_sync_at
      LIMIT p_limit
    $$
    """,
    "REVOKE ALL ON FUNCTION pane_due_links(integer) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION pane_due_links(integer) TO pane_app",
]


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)
    for statement in _vendor_rows("deals"):
        op.execute(statement)
    for statement in _workspace_rows("sync_seen"):
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS pane_due_links(integer)")
    op.execute("DROP FUNCTION IF EXISTS pane_uuid7()")
    op.execute("DROP INDEX IF EXISTS sync_runs_pending_idx")
    op.execute(
        "ALTER TABLE sync_runs DROP COLUMN IF EXISTS full_resync, DROP COLUMN IF EXISTS progress"
    )
    op.execute(
        "ALTER TABLE vendor_links DROP COLUMN IF EXISTS sync_lease_owner,"
        " DROP COLUMN IF EXISTS sync_lease_until, DROP COLUMN IF EXISTS last_error"
    )
    op.execute("DROP TABLE IF EXISTS sync_seen")
    op.execute("DROP TABLE IF EXISTS deals")
    op.execute("ALTER TABLE leads DROP COLUMN IF EXISTS vendor_status")
