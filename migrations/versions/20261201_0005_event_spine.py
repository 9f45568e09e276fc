"""The event spine: typed event names, vendor-visible events, retention, the outbox.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

Events get one ``type`` (``lead.updated``) from the catalogue instead of free-text entity and
action columns, and become readable by a vendor principal for its own vendor's rows in
workspaces that actively link it (the change feed). ``workspaces.events_purged_seq`` remembers
how far retention has deleted, so a feed position older than that is answered with 410.

``outbox`` holds work that must follow a commit (jobs to enqueue), written in the same
transaction as the change; ``pane_outbox_pending()`` is the relay's one narrow view across
workspaces (ids only), and ``pane_purge_events()`` the retention job's.

What this migration needs is written out here, not imported from pane: a later change to the
application must never change what an old migration does.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WS = "(SELECT NULLIF(current_setting('pane.workspace_id', true), '')::uuid)"
VENDOR = "(SELECT NULLIF(current_setting('pane.vendor_id', true), '')::uuid)"
VISIBLE_WORKSPACES = "(SELECT pane_visible_workspaces())::uuid[]"

DDL = [
    "ALTER TABLE events ADD COLUMN type text",
    "UPDATE events SET type = entity || '.' || action",
    "ALTER TABLE events ALTER COLUMN type SET NOT NULL",
    "ALTER TABLE events DROP COLUMN entity, DROP COLUMN action",
    "DROP POLICY workspace_member ON events",
    f"CREATE POLICY visible_rows ON events FOR ALL TO PUBLIC "
    f"USING (workspace_id = ANY ({VISIBLE_WORKSPACES}) "
    f"AND ({VENDOR} IS NULL OR vendor_id = {VENDOR})) "
    f"WITH CHECK (workspace_id = {WS})",
    f"CREATE POLICY workspace_deletes ON events AS RESTRICTIVE FOR DELETE TO PUBLIC "
    f"USING (workspace_id = {WS})",
    # BRIN: events arrive in time order, so retention finds old ones almost for free on writes
    "CREATE INDEX events_created_idx ON events USING brin (created_at)",
    "ALTER TABLE workspaces ADD COLUMN events_purged_seq bigint NOT NULL DEFAULT 0",
    "ALTER TABLE price_items ADD COLUMN vendor_updated_at timestamptz",
    """
    CREATE TABLE outbox (
      workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
      id uuid NOT NULL,
      job text NOT NULL,
      job_id text,
      kwargs jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT now(),
      attempts integer NOT NULL DEFAULT 0,
      last_error text,
      PRIMARY KEY (workspace_id, id)
    )
    """,
    "CREATE INDEX outbox_created_idx ON outbox (created_at)",
    "ALTER TABLE outbox ENABLE ROW LEVEL SECURITY",
    "ALTER TABLE outbox FORCE ROW LEVEL SECURITY",
    f"CREATE POLICY workspace_member ON outbox FOR ALL TO PUBLIC "
    f"USING (workspace_id = {WS}) WITH CHECK (workspace_id = {WS})",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO pane_app",
    # The relay's view across workspaces: ids of rows older than a moment (younger ones are
    # being relayed by the process that wrote them), nothing else.
    """
    CREATE FUNCTION pane_outbox_pending(p_limit integer, p_older_than interval)
    RETURNS TABLE (workspace_id uuid, id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
      SELECT o.workspace_id, o.id FROM outbox o
      WHERE o.created_at < now() - p_older_than
      ORDER BY o.created_at
      LIMIT p_limit
    $$
    """,
    "REVOKE ALL ON FUNCTION pane_outbox_pending(integer, interval) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION pane_outbox_pending(integer, interval) TO pane_app",
    # Retention: events committed before p_before go, in every workspace, and each workspace
    # remembers the highest sequence number dropped. Returns how many were deleted.
    """
    CREATE FUNCTION pane_purge_events(p_before timestamptz, p_limit integer)
    RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE purged bigint;
    BEGIN
      WITH doomed AS (
        SELECT e.workspace_id, e.seq FROM events e
        WHERE e.created_at < p_before
        ORDER BY e.created_at
        LIMIT p_limit
      ), gone AS (
        DELETE FROM events e USING doomed d
        WHERE e.workspace_id = d.workspace_id AND e.seq = d.seq
        RETURNING e.workspace_id, e.seq
      ), horizon AS (
        SELECT g.workspace_id, max(g.seq) AS seq FROM gone g GROUP BY g.workspace_id
      ), moved AS (
        UPDATE workspaces w SET events_purged_seq = greatest(w.events_purged_seq, h.seq)
        FROM horizon h WHERE w.id = h.workspace_id
        RETURNING 1
      )
      SELECT count(*) INTO purged FROM gone;
      RETURN purged;
    END $$
    """,
    "REVOKE ALL ON FUNCTION pane_purge_events(timestamptz, integer) FROM PUBLIC",
    "GRANT EXECUTE ON FUNCTION pane_purge_events(timestamptz, integer) TO pane_app",
]


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS pane_purge_events(timestamptz, integer)")
    op.execute("DROP FUNCTION IF EXISTS pane_outbox_pending(integer, interval)")
    op.execute("DROP TABLE IF EXISTS outbox")
    op.execute("ALTER TABLE price_items DROP COLUMN IF EXISTS vendor_updated_at")
    op.execute("ALTER TABLE workspaces DROP COLUMN IF EXISTS events_purged_seq")
    op.execute("DROP INDEX IF EXISTS events_created_idx")
    op.execute("DROP POLICY IF EXISTS workspace_deletes ON events")
    op.execute("DROP POLICY IF EXISTS visible_rows ON events")
    op.execute(
        f"CREATE POLICY workspace_member ON events FOR ALL TO PUBLIC "
        f"USING (workspace_id = {WS}) WITH CHECK (workspace_id = {WS})"
    )
    op.execute("ALTER TABLE events ADD COLUMN entity text, ADD COLUMN action text")
    op.execute(
        "UPDATE events SET entity = split_part(type, '.', 1), action = split_part(type, '.', 2)"
    )
    op.execute("ALTER TABLE events ALTER COLUMN entity SET NOT NULL")
    op.execute("ALTER TABLE events ALTER COLUMN action SET NOT NULL")
    op.execute("ALTER TABLE events DROP COLUMN type")
