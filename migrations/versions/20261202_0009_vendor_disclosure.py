"""What a vendor sees of its leads: the reseller's choice per link, enforced by the database.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

A vendor's key used to read every column of its leads, the reseller's private notes and the
lead's owner included. Now each link says which of the reseller's own fields on a lead its
vendor may read besides the status (``disclosed_lead_fields``: ``status_reason`` unless the
reseller chooses otherwise; ``owner_id`` and ``notes`` only if chosen), and who agreed to that
and when. A vendor principal's transaction runs as the role ``pane_vendor``, which may not read
``leads`` (nor ``deals``) at all: it reads ``vendor_leads``, a security-barrier view that shows
each of those fields only where the link discloses it, and only the rows of the vendor in the
transaction's setting whose link is active. Everything else ``pane_app`` may use,
``pane_vendor`` may too. A vendor also reads the webhooks it pushed to a link that actively
links it (``webhook_inbox``; writing them stays with the workspace).

What this migration needs is written out here, not imported from pane.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DISCLOSABLE = "{status_reason,owner_id,notes}"
VENDOR = "NULLIF(current_setting('pane.vendor_id', true), '')::uuid"
WS = "(SELECT NULLIF(current_setting('pane.workspace_id', true), '')::uuid)"
# Every column of leads as it is at this revision; the reseller's own fields masked.
PLAIN = [
    "workspace_id", "id", "vendor_id", "external_id", "first_name", "last_name", "email",
    "phone", "company", "title", "country", "status", "vendor_status", "score", "source",
    "campaign_ref", "accept_by", "vendor_created_at", "vendor_updated_at", "raw", "version",
    "deleted_at", "created_at", "updated_at", "last_changes",
]  # fmt: skip
MASKED = ["status_reason", "owner_id", "notes"]

VIEW = f"""
CREATE VIEW vendor_leads WITH (security_barrier) AS
SELECT {", ".join(f"l.{column}" for column in PLAIN)},
       {", ".join(f"CASE WHEN '{c}' = ANY (k.disclosed_lead_fields) THEN l.{c} END AS {c}" for c in MASKED)}
FROM leads l
JOIN vendor_links k ON k.workspace_id = l.workspace_id AND k.vendor_id = l.vendor_id
WHERE k.status = 'active' AND l.vendor_id = {VENDOR}
"""

DDL = [
    "ALTER TABLE vendor_links"
    f" ADD COLUMN disclosed_lead_fields text[] NOT NULL DEFAULT '{{status_reason}}',"
    " ADD COLUMN disclosure_agreed_by uuid REFERENCES users (id) ON DELETE SET NULL,"
    " ADD COLUMN disclosure_agreed_at timestamptz,"
    " ADD CONSTRAINT vendor_links_disclosed_lead_fields_check"
    f" CHECK (disclosed_lead_fields <@ '{DISCLOSABLE}'::text[])",
    """
    DO $$
    BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pane_vendor') THEN
        CREATE ROLE pane_vendor NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
      END IF;
    END $$
    """,
    # Provisioned by an operator (README: Running on your own PostgreSQL), a role is left as
    # it is: the schema's owner need not be able to manage roles.
    """
    DO $$
    BEGIN
      IF NOT pg_has_role('pane_app', 'pane_vendor', 'MEMBER') THEN
        GRANT pane_vendor TO pane_app;
      END IF;
    END $$
    """,
    "GRANT USAGE ON SCHEMA public TO pane_vendor",
    # What pane_app may use, but leads and deals: the reseller's fields live there.
    """
    DO $$
    DECLARE granted record;
    BEGIN
      FOR granted IN
        SELECT table_name, privilege_type FROM information_schema.role_table_grants
        WHERE grantee = 'pane_app' AND table_schema = 'public'
          AND table_name NOT IN ('leads', 'deals')
      LOOP
        EXECUTE format('GRANT %s ON %I TO pane_vendor', granted.privilege_type,
                       granted.table_name);
      END LOOP;
      FOR granted IN
        SELECT p.oid::regprocedure AS function FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proname LIKE 'pane\\_%'
          AND has_function_privilege('pane_app', p.oid, 'EXECUTE')
      LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO pane_vendor', granted.function);
      END LOOP;
    END $$
    """,
    VIEW,
    "GRANT SELECT ON vendor_leads TO pane_vendor",
    # A vendor reads the webhooks it pushed to links that actively link it.
    "DROP POLICY workspace_member ON webhook_inbox",
    f"""
    CREATE POLICY visible_rows ON webhook_inbox FOR ALL TO PUBLIC
    USING (workspace_id = {WS} OR EXISTS (
      SELECT 1 FROM vendor_links k
      WHERE k.workspace_id = webhook_inbox.workspace_id AND k.id = webhook_inbox.link_id
        AND k.status = 'active' AND k.vendor_id = {VENDOR}))
    WITH CHECK (workspace_id = {WS})
    """,
    f"CREATE POLICY workspace_writes ON webhook_inbox AS RESTRICTIVE FOR UPDATE TO PUBLIC"
    f" USING (workspace_id = {WS})",
    f"CREATE POLICY workspace_deletes ON webhook_inbox AS RESTRICTIVE FOR DELETE TO PUBLIC"
    f" USING (workspace_id = {WS})",
]


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    for policy in ("visible_rows", "workspace_writes", "workspace_deletes"):
        op.execute(f"DROP POLICY IF EXISTS {policy} ON webhook_inbox")
    op.execute(
        f"CREATE POLICY workspace_member ON webhook_inbox FOR ALL TO PUBLIC "
        f"USING (workspace_id = {WS}) WITH CHECK (workspace_id = {WS})"
    )
    op.execute("DROP VIEW IF EXISTS vendor_leads")
    op.execute(
        """
        DO $$
        BEGIN
          IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'pane_vendor') THEN
            EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA public FROM pane_vendor';
            EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM pane_vendor';
            EXECUTE 'REVOKE USAGE ON SCHEMA public FROM pane_vendor';
          END IF;
        END $$
        """
    )
    op.execute(
        "ALTER TABLE vendor_links DROP CONSTRAINT IF EXISTS vendor_links_disclosed_lead_fields_check,"
        " DROP COLUMN IF EXISTS disclosure_agreed_at, DROP COLUMN IF EXISTS disclosure_agreed_by,"
        " DROP COLUMN IF EXISTS disclosed_lead_fields"
    )
