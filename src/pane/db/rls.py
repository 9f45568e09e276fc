"""Row-level security policies as SQL, for migrations after the foundation (0001 spells the
same policies out in full). Settings are read once per statement through initplans and an
unset or empty setting matches no row."""

WS = "(SELECT NULLIF(current_setting('pane.workspace_id', true), '')::uuid)"
VENDOR = "(SELECT NULLIF(current_setting('pane.vendor_id', true), '')::uuid)"
VISIBLE_WORKSPACES = "(SELECT pane_visible_workspaces())::uuid[]"


def protect(table: str) -> list[str]:
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
    ]


def workspace_rows(table: str) -> list[str]:
    """Rows only the workspace itself reads and writes."""
    return [
        *protect(table),
        f"CREATE POLICY workspace_member ON {table} FOR ALL TO PUBLIC "
        f"USING (workspace_id = {WS}) WITH CHECK (workspace_id = {WS})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO pane_app",
    ]


def vendor_rows(table: str) -> list[str]:
    """Rows that belong to a vendor: the workspace reads and writes them; the vendor reads its
    own in workspaces that actively link it. One permissive policy keeps index scans."""
    return [
        *protect(table),
        f"CREATE POLICY visible_rows ON {table} FOR ALL TO PUBLIC "
        f"USING (workspace_id = ANY ({VISIBLE_WORKSPACES}) "
        f"AND ({VENDOR} IS NULL OR vendor_id = {VENDOR})) "
        f"WITH CHECK (workspace_id = {WS})",
        f"CREATE POLICY workspace_deletes ON {table} AS RESTRICTIVE FOR DELETE TO PUBLIC "
        f"USING (workspace_id = {WS})",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO pane_app",
    ]
