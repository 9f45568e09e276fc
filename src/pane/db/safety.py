"""Refuse to run as a role that row-level security would not hold back."""

from pane.db.database import Database

_CHECK = """
    SELECT r.rolname, r.rolsuper, r.rolbypassrls,
      COALESCE((
        SELECT array_agg(c.relname::text ORDER BY c.relname)
        FROM pg_class c
        WHERE c.relkind IN ('r', 'p')
          AND c.relnamespace = 'public'::regnamespace
          AND (c.relrowsecurity OR EXISTS (
                SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                AND a.attname = 'workspace_id' AND NOT a.attisdropped))
          AND pg_has_role(current_user, c.relowner, 'USAGE')
      ), '{}') AS owned
    FROM pg_roles r WHERE r.rolname = current_user
"""


class UnsafeDatabaseRole(RuntimeError):
    pass


async def assert_runtime_role_is_safe(database: Database) -> None:
    async with database.transaction() as tx:
        row = await tx.connection.fetchrow(_CHECK)
    problems = []
    if row["rolsuper"]:
        problems.append("is a superuser")
    if row["rolbypassrls"]:
        problems.append("has BYPASSRLS")
    if row["owned"]:
        problems.append(f"owns (or is a member of the owner of) {', '.join(row['owned'])}")
    if problems:
        raise UnsafeDatabaseRole(
            f"refusing to start: the runtime database role {row['rolname']!r} "
            + " and ".join(problems)
            + "; row-level security would not isolate tenants. Connect PANE_DATABASE_URL as "
            "pane_app (see README, 'Running on your own PostgreSQL')."
        )
