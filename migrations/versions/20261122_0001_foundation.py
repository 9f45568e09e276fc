"""Foundation: workspaces, principals, vendors, links, leads, events, audit log; forced RLS.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Isolation lives here. Every table that carries tenant rows has row-level security enabled and
forced (so even the owner is subject to it). The runtime role ``pane_app`` owns nothing and gets
plain DML grants. Policies read the transaction-local settings ``pane.workspace_id``,
``pane.vendor_id``, ``pane.user_id`` and ``pane.api_key_hash`` once per statement through an
initplan ``(SELECT ...)``; an unset or empty setting is NULL and matches no row (fail closed).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WS = "(SELECT NULLIF(current_setting('pane.workspace_id', true), '')::uuid)"
VENDOR = "(SELECT NULLIF(current_setting('pane.vendor_id', true), '')::uuid)"
USER = "(SELECT NULLIF(current_setting('pane.user_id', true), '')::uuid)"
KEY_HASH = "(SELECT decode(NULLIF(current_setting('pane.api_key_hash', true), ''), 'hex'))"
VISIBLE_WORKSPACES = "(SELECT pane_visible_workspaces())::uuid[]"

# Tables whose rows belong to a vendor: a vendor principal may read its own rows in the
# workspaces that actively link it.
VENDOR_ROW_TABLES = ["leads"]
TENANT_TABLES = [
    "memberships",
    "invitations",
    "api_keys",
    "vendor_links",
    "leads",
    "events",
    "audit_log",
]


def _protect(table: str) -> None:
    op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def _vendor_row_policies(table: str) -> None:
    """One permissive policy for every command, so the planner sees a single predicate
    (``workspace_id = ANY(initplan)``) and keeps an index scan on ``(workspace_id, ...)``;
    permissive policies OR-ed together would turn it into a bitmap OR. Writes stay with the
    workspace: WITH CHECK needs the workspace setting, and a restrictive policy keeps vendor
    principals from deleting."""
    op.execute(
        f"CREATE POLICY visible_rows ON {table} FOR ALL TO PUBLIC "
        f"USING (workspace_id = ANY ({VISIBLE_WORKSPACES}) "
        f"AND ({VENDOR} IS NULL OR vendor_id = {VENDOR})) "
        f"WITH CHECK (workspace_id = {WS})"
    )
    op.execute(
        f"CREATE POLICY workspace_deletes ON {table} AS RESTRICTIVE FOR DELETE TO PUBLIC "
        f"USING (workspace_id = {WS})"
    )


def _workspace_policy(table: str, column: str = "workspace_id") -> None:
    op.execute(
        f"CREATE POLICY workspace_member ON {table} FOR ALL TO PUBLIC "
        f"USING ({column} = {WS}) WITH CHECK ({column} = {WS})"
    )


def _script(sql: str) -> None:
    """asyncpg runs one statement per call; the DDL below has no semicolons inside strings."""
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(
        """
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pane_app') THEN
            CREATE ROLE pane_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
          END IF;
        END $$
        """
    )

    _script(
        """
        CREATE TABLE workspaces (
          id uuid PRIMARY KEY,
          name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
          event_seq bigint NOT NULL DEFAULT 0,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE users (
          id uuid PRIMARY KEY,
          email text NOT NULL,
          name text NOT NULL,
          password_hash text NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          disabled_at timestamptz
        );
        CREATE UNIQUE INDEX users_email_key ON users (lower(email));

        CREATE TABLE refresh_tokens (
          id uuid PRIMARY KEY,
          family_id uuid NOT NULL,
          user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
          token_hash bytea NOT NULL UNIQUE,
          workspace_hint uuid,
          created_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz NOT NULL,
          used_at timestamptz,
          revoked_at timestamptz
        );
        CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
        CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

        CREATE TABLE memberships (
          workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
          user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
          role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (workspace_id, user_id)
        );
        CREATE INDEX memberships_user_idx ON memberships (user_id, workspace_id);

        CREATE TABLE invitations (
          workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
          id uuid NOT NULL,
          email text NOT NULL,
          role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
          token_hash bytea NOT NULL,
          invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz NOT NULL,
          accepted_at timestamptz,
          accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
          revoked_at timestamptz,
          PRIMARY KEY (workspace_id, id),
          UNIQUE (workspace_id, token_hash)
        );

        CREATE TABLE api_keys (
          workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
          id uuid NOT NULL,
          name text NOT NULL,
          prefix text NOT NULL,
          key_hash bytea NOT NULL,
          scopes text[] NOT NULL,
          created_by uuid REFERENCES users (id) ON DELETE SET NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          expires_at timestamptz,
          last_used_at timestamptz,
          revoked_at timestamptz,
          PRIMARY KEY (workspace_id, id),
          UNIQUE (workspace_id, key_hash)
        );
        CREATE INDEX api_keys_hash_idx ON api_keys (key_hash);

        CREATE TABLE vendors (
          id uuid PRIMARY KEY,
          slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
          name text NOT NULL,
          kind text NOT NULL CHECK (kind IN ('vendor', 'distributor')),
          website text,
          created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX vendors_name_trgm_idx ON vendors USING gin (lower(name) gin_trgm_ops);

        CREATE TABLE vendor_api_keys (
          vendor_id uuid NOT NULL REFERENCES vendors (id) ON DELETE CASCADE,
          id uuid NOT NULL,
          name text NOT NULL,
          prefix text NOT NULL,
          key_hash bytea NOT NULL UNIQUE,
          created_at timestamptz NOT NULL DEFAULT now(),
          last_used_at timestamptz,
          revoked_at timestamptz,
          PRIMARY KEY (vendor_id, id)
        );

        CREATE TABLE vendor_links (
          workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
          id uuid NOT NULL,
          vendor_id uuid NOT NULL REFERENCES vendors (id),
          connector text NOT NULL,
          config jsonb NOT NULL DEFAULT '{}',
          credentials_encrypted text,
          status text NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'paused', 'needs_reauth', 'error')),
          created_by uuid REFERENCES users (id) ON DELETE SET NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (workspace_id, id),
          UNIQUE (workspace_id, vendor_id)
        );
        CREATE INDEX vendor_links_vendor_idx ON vendor_links (vendor_id, workspace_id, status);

        CREATE TABLE leads (
          workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
          id uuid NOT NULL,
          vendor_id uuid NOT NULL REFERENCES vendors (id),
          external_id text NOT NULL,
          first_name text,
          last_name text,
          email text,
          phone text,
          company text,
          title text,
          country text,
          status text NOT NULL DEFAULT 'new'
            CHECK (status IN ('new', 'accepted', 'rejected', 'working', 'converted', 'lost')),
          status_reason text,
          score integer CHECK (score BETWEEN 0 AND 100),
          source text,
          campaign_ref text,
          owner_id uuid,
          notes text,
          accept_by timestamptz,
          vendor_created_at timestamptz,
          vendor_updated_at timestamptz,
          raw jsonb NOT NULL DEFAULT '{}',
          version integer NOT NULL DEFAULT 1,
          created_at timestamptz NOT NULL DEFAULT now(),
          updated_at timestamptz NOT NULL DEFAULT now(),
          deleted_at timestamptz,
          PRIMARY KEY (workspace_id, id),
          UNIQUE (workspace_id, vendor_id, external_id),
          FOREIGN KEY (workspace_id, owner_id) REFERENCES memberships (workspace_id, user_id)
            ON DELETE SET NULL (owner_id)
        );
        CREATE INDEX leads_vendor_idx ON leads (workspace_id, vendor_id, id);
        -- a vendor principal reads across the workspaces that linked it: lead with its column
        CREATE INDEX leads_vendor_principal_idx ON leads (vendor_id, id);
        CREATE INDEX leads_status_idx ON leads (workspace_id, status, id);
        CREATE INDEX leads_updated_idx ON leads (workspace_id, updated_at, id);
        -- A gin index cannot lead with a uuid without btree_gin: the workspace_id predicate
        -- filters what the trigram search finds.
        CREATE INDEX leads_search_idx ON leads USING gin (
          lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' ||
                coalesce(email, '') || ' ' || coalesce(company, '')) gin_trgm_ops
        );

        CREATE TABLE events (
          workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
          seq bigint NOT NULL,
          id uuid NOT NULL,
          entity text NOT NULL,
          entity_id uuid NOT NULL,
          vendor_id uuid,
          action text NOT NULL,
          actor_type text NOT NULL,
          actor_id uuid,
          data jsonb NOT NULL DEFAULT '{}',
          created_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (workspace_id, seq)
        );

        CREATE TABLE audit_log (
          workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
          id uuid NOT NULL,
          actor_type text NOT NULL,
          actor_id uuid,
          action text NOT NULL,
          target_type text,
          target_id text,
          ip text,
          request_id text,
          details jsonb NOT NULL DEFAULT '{}',
          created_at timestamptz NOT NULL DEFAULT now(),
          PRIMARY KEY (workspace_id, id)
        );
        """
    )
    for table in [*TENANT_TABLES, "workspaces", "vendor_api_keys"]:
        _protect(table)

    _workspace_policy("workspaces", column="id")
    op.execute(
        "CREATE POLICY member_lists_own ON workspaces FOR SELECT TO PUBLIC USING "
        f"(id IN (SELECT m.workspace_id FROM memberships m WHERE m.user_id = {USER}))"
    )
    op.execute(
        "CREATE POLICY linked_vendor_reads ON workspaces FOR SELECT TO PUBLIC USING "
        "(EXISTS (SELECT 1 FROM vendor_links l WHERE l.workspace_id = workspaces.id "
        f"AND l.vendor_id = {VENDOR} AND l.status = 'active'))"
    )

    # What the current principal may read: its workspace, or for a vendor principal every
    # workspace whose link to it is active (read through vendor_links' own policies).
    op.execute(
        """
        CREATE FUNCTION pane_visible_workspaces() RETURNS uuid[]
        LANGUAGE plpgsql STABLE AS $$
        -- PL/pgSQL, not SQL: a non-inlinable SQL function has its body planned again for
        -- every statement that calls it, which more than doubled the cost of a list query;
        -- PL/pgSQL keeps its plans for the session.
        DECLARE
          ws uuid := NULLIF(current_setting('pane.workspace_id', true), '')::uuid;
          usr uuid := NULLIF(current_setting('pane.user_id', true), '')::uuid;
          vendor uuid := NULLIF(current_setting('pane.vendor_id', true), '')::uuid;
        BEGIN
          IF ws IS NOT NULL AND usr IS NOT NULL THEN
            -- a user principal must still be a member: checked here too, not only by the API
            RETURN ARRAY(SELECT m.workspace_id FROM memberships m
                         WHERE m.workspace_id = ws AND m.user_id = usr);
          ELSIF ws IS NOT NULL THEN
            RETURN ARRAY[ws];
          ELSIF vendor IS NOT NULL THEN
            RETURN ARRAY(SELECT l.workspace_id FROM vendor_links l
                         WHERE l.vendor_id = vendor AND l.status = 'active');
          END IF;
          RETURN '{}'::uuid[];
        END $$
        """
    )
    for table in TENANT_TABLES:
        if table in VENDOR_ROW_TABLES:
            _vendor_row_policies(table)
        else:
            _workspace_policy(table)

    op.execute(
        f"CREATE POLICY user_reads_own ON memberships FOR SELECT TO PUBLIC USING (user_id = {USER})"
    )
    op.execute(
        "CREATE POLICY key_holder_reads ON api_keys FOR SELECT TO PUBLIC "
        f"USING (key_hash = {KEY_HASH})"
    )
    op.execute(
        "CREATE POLICY vendor_own ON vendor_api_keys FOR ALL TO PUBLIC "
        f"USING (vendor_id = {VENDOR}) WITH CHECK (vendor_id = {VENDOR})"
    )
    op.execute(
        "CREATE POLICY key_holder_reads ON vendor_api_keys FOR SELECT TO PUBLIC "
        f"USING (key_hash = {KEY_HASH})"
    )
    op.execute(
        "CREATE POLICY linked_vendor_reads ON vendor_links FOR SELECT TO PUBLIC "
        f"USING (vendor_id = {VENDOR} AND status = 'active')"
    )

    # One round trip per request: set the principal and learn its role. A caller who is not a
    # member gets NULL and the workspace setting is cleared again, so nothing stays visible.
    op.execute(
        """
        CREATE FUNCTION pane_enter_workspace(p_workspace uuid, p_user uuid) RETURNS text
        LANGUAGE plpgsql VOLATILE AS $$
        DECLARE found_role text;
        BEGIN
          PERFORM set_config('pane.workspace_id', p_workspace::text, true);
          PERFORM set_config('pane.user_id', p_user::text, true);
          SELECT role INTO found_role FROM memberships
            WHERE workspace_id = p_workspace AND user_id = p_user;
          IF found_role IS NULL THEN
            PERFORM set_config('pane.workspace_id', '', true);
          END IF;
          RETURN found_role;
        END $$
        """
    )
    # The read path's one round trip: sent as `BEGIN; SELECT pane_begin_reading(...)`, it scopes
    # the transaction and refuses (insufficient_privilege) unless the user is still a member
    # whose current role is one of p_roles.
    op.execute(
        """
        CREATE FUNCTION pane_begin_reading(p_workspace uuid, p_user uuid, p_roles text[])
        RETURNS void LANGUAGE plpgsql VOLATILE AS $$
        DECLARE found_role text := pane_enter_workspace(p_workspace, p_user);
        BEGIN
          IF found_role IS NULL THEN
            RAISE EXCEPTION 'not a member of this workspace'
              USING ERRCODE = 'insufficient_privilege', HINT = 'pane:not-member';
          END IF;
          IF NOT found_role = ANY (p_roles) THEN
            PERFORM set_config('pane.workspace_id', '', true);
            RAISE EXCEPTION 'role % lacks the permission', found_role
              USING ERRCODE = 'insufficient_privilege', HINT = 'pane:role';
          END IF;
        END $$
        """
    )
    # The narrow path from an API key to its principal: knowing the key's hash makes exactly
    # that key row visible; the function then enters the key's workspace (or vendor) and
    # forgets the hash. Runs with the caller's rights; RLS applies throughout.
    op.execute(
        """
        CREATE FUNCTION pane_authenticate_key(p_hash bytea)
        RETURNS TABLE (kind text, key_id uuid, workspace_id uuid, vendor_id uuid, scopes text[])
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
          PERFORM set_config('pane.api_key_hash', encode(p_hash, 'hex'), true);
          RETURN QUERY
            SELECT 'workspace'::text, k.id, k.workspace_id, NULL::uuid, k.scopes FROM api_keys k
            WHERE k.key_hash = p_hash AND k.revoked_at IS NULL
              AND (k.expires_at IS NULL OR k.expires_at > now())
            UNION ALL
            SELECT 'vendor'::text, v.id, NULL::uuid, v.vendor_id, ARRAY['vendor']::text[]
            FROM vendor_api_keys v WHERE v.key_hash = p_hash AND v.revoked_at IS NULL;
          PERFORM set_config('pane.api_key_hash', '', true);
        END $$
        """
    )

    op.execute("GRANT USAGE ON SCHEMA public TO pane_app")
    op.execute("GRANT SELECT ON vendors TO pane_app")
    op.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON workspaces, users, refresh_tokens, "
        + ", ".join(TENANT_TABLES)
        + ", vendor_api_keys TO pane_app"
    )
    op.execute("GRANT EXECUTE ON FUNCTION pane_visible_workspaces() TO pane_app")
    op.execute("GRANT EXECUTE ON FUNCTION pane_enter_workspace(uuid, uuid) TO pane_app")
    op.execute("GRANT EXECUTE ON FUNCTION pane_authenticate_key(bytea) TO pane_app")
    op.execute("GRANT EXECUTE ON FUNCTION pane_begin_reading(uuid, uuid, text[]) TO pane_app")
    op.execute("REVOKE ALL ON alembic_version FROM pane_app")


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS pane_authenticate_key(bytea)")
    op.execute("DROP FUNCTION IF EXISTS pane_begin_reading(uuid, uuid, text[])")
    op.execute("DROP FUNCTION IF EXISTS pane_enter_workspace(uuid, uuid)")
    op.execute("DROP FUNCTION IF EXISTS pane_visible_workspaces() CASCADE")
    for table in [
        "audit_log",
        "events",
        "leads",
        "vendor_links",
        "vendor_api_keys",
        "vendors",
        "api_keys",
        "invitations",
        "memberships",
        "refresh_tokens",
        "users",
        "workspaces",
    ]:
        op.execute(f"DROP TABLE IF EXISTS {table}")
