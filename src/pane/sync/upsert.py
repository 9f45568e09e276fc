"""The one bulk-upsert path: a page of records into its table, with an event for each row that
really changed, in the caller's transaction.

Rows go by binary ``COPY`` into a session-local staging table (``COPY`` into the tenant table
itself is refused under forced RLS), then one ``INSERT … SELECT … ON CONFLICT (workspace_id,
vendor_id, external_id) DO UPDATE … WHERE <something differs>`` moves them, so unchanged rows
are neither rewritten nor reported; its ``RETURNING`` feeds the events insert in the same
statement, which takes a contiguous block of the workspace's event sequence.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Any

import asyncpg
import orjson
from uuid_utils import uuid7

from pane.connectors.records import PriceItemRecord, Record
from pane.sync.targets import Target, staged_row


@dataclass(frozen=True, slots=True)
class Written:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


def _stage_table(target: Target) -> str:
    return f"pane_stage_{target.table}"


@cache
def _stage_ddl(target: Target) -> str:
    columns = ", ".join(f"{column.name} {column.pg_type}" for column in target.columns)
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {_stage_table(target)} "
        f"(id uuid, external_id text, {columns}, raw text, deleted boolean) ON COMMIT DELETE ROWS"
    )


def _events_from(changed: str, entity: str) -> str:
    """Events for the rows of CTE ``changed`` (id, external_id, action): one sequence block."""
    return f"""
    , numbered AS (
      SELECT c.*, row_number() OVER () AS n, count(*) OVER () AS total FROM {changed} c
    ), seq AS (
      UPDATE workspaces SET event_seq = event_seq + (SELECT count(*) FROM {changed})
      WHERE id = $1 AND EXISTS (SELECT 1 FROM {changed})
      RETURNING event_seq
    )
    INSERT INTO events
      (workspace_id, seq, id, entity, entity_id, vendor_id, action, actor_type, actor_id, data)
    SELECT $1, seq.event_seq - n.total + n.n, ($5::uuid[])[n.n], '{entity}', n.id, $2, n.action,
           'connector', $3, jsonb_build_object('external_id', n.external_id, 'run_id', $4::text)
    FROM numbered n CROSS JOIN seq
    RETURNING action
    """


@cache
def _upsert_sql(target: Target) -> str:
    names = target.names
    differs_now = ", ".join([*(f"t.{name}" for name in names), "t.raw", "t.deleted_at IS NULL"])
    differs_new = ", ".join(
        [*(f"EXCLUDED.{name}" for name in names), "EXCLUDED.raw", "EXCLUDED.deleted_at IS NULL"]
    )
    price_list_column = price_list_value = price_list_join = price_list_set = ""
    if target.price_list_by_currency:
        price_list_column = ", price_list_id"
        price_list_value = ", pl.id"
        price_list_join = (
            "JOIN price_lists pl ON pl.workspace_id = $1 AND pl.vendor_id = $2"
            " AND pl.external_id = s.currency"
        )
        price_list_set = ", price_list_id = EXCLUDED.price_list_id"
    version = ", version = t.version + 1" if target.versioned else ""
    return f"""
    WITH changed AS (
      INSERT INTO {target.table} AS t
        (workspace_id, id, vendor_id, external_id, {", ".join(names)}{price_list_column},
         raw, deleted_at)
      SELECT $1, s.id, $2, s.external_id, {", ".join(f"s.{name}" for name in names)}
             {price_list_value}, s.raw::jsonb, CASE WHEN s.deleted THEN now() END
      FROM {_stage_table(target)} s {price_list_join}
      ON CONFLICT (workspace_id, vendor_id, external_id) DO UPDATE SET
        {", ".join(f"{name} = EXCLUDED.{name}" for name in names)}{price_list_set},
        raw = EXCLUDED.raw,
        deleted_at = CASE WHEN EXCLUDED.deleted_at IS NULL THEN NULL
                          ELSE coalesce(t.deleted_at, EXCLUDED.deleted_at) END,
        updated_at = now(){version}
      WHERE ({differs_now}) IS DISTINCT FROM ({differs_new})
      RETURNING t.id, t.external_id,
        CASE WHEN t.deleted_at IS NOT NULL THEN 'deleted'
             WHEN t.xmax = 0 THEN 'created' ELSE 'updated' END AS action
    )
    {_events_from("changed", target.entity)}
    """


# What a full read did not see, as a set difference (hashed or sorted, never quadratic).
# The tables were just filled, faster than autovacuum analyzes them; with statistics saying
# "one row" on each side, a join of the two here became a rescan per row (minutes at 20k).
_UNSEEN = """
SELECT coalesce(array_agg(external_id), '{{}}') FROM (
  SELECT external_id FROM {table}
  WHERE workspace_id = $1 AND vendor_id = $2 AND deleted_at IS NULL
  EXCEPT
  SELECT external_id FROM sync_seen WHERE workspace_id = $1 AND run_id = $3 AND stream = $4
) unseen
"""


@cache
def _sweep_sql(target: Target) -> str:
    version = ", version = t.version + 1" if target.versioned else ""
    return f"""
    WITH changed AS (
      UPDATE {target.table} t SET deleted_at = now(), updated_at = now(){version}
      WHERE t.workspace_id = $1 AND t.vendor_id = $2 AND t.external_id = ANY ($6::text[])
        AND t.deleted_at IS NULL
      RETURNING t.id, t.external_id, 'deleted'::text AS action
    )
    {_events_from("changed", target.entity)}
    """


_ENSURE_PRICE_LISTS = """
INSERT INTO price_lists (workspace_id, id, vendor_id, external_id, name, currency)
SELECT $1, pane_uuid7(), $2, c, $3 || ' (' || c || ')', c FROM unnest($4::text[]) AS x(c)
ON CONFLICT (workspace_id, vendor_id, external_id) DO NOTHING
"""


def _event_ids(count: int) -> list[Any]:
    """Ids for as many events as rows might change (the SQL takes the first it needs)."""
    return [uuid7() for _ in range(count)]


def _counted(rows: list[asyncpg.Record], staged: int) -> Written:
    actions = Counter(row["action"] for row in rows)
    return Written(
        created=actions["created"],
        updated=actions["updated"],
        deleted=actions["deleted"],
        unchanged=staged - len(rows),
    )


async def write_page(
    connection: asyncpg.Connection,
    *,
    target: Target,
    records: list[Record],
    workspace_id: uuid.UUID,
    vendor_id: uuid.UUID,
    vendor_name: str,
    link_id: uuid.UUID,
    run_id: uuid.UUID,
    remember_seen: bool,
) -> Written:
    """Upsert ``records`` (the caller's transaction, scoped to the workspace) and append their
    events. With ``remember_seen`` (a full resync) their ids are noted for the final sweep.
    One page per transaction: the staging rows are cleared at commit."""
    latest: dict[str, Record] = {record.external_id: record for record in records}
    if not latest:
        return Written()
    await connection.execute(_stage_ddl(target))
    # Ids are made here, not by pane_uuid7() in SQL: PostgreSQL's CPU is the sync's limit, and
    # a Rust-made UUIDv7 costs a twentieth of the SQL one. A row that already exists keeps its
    # id; its fresh one is simply not used.
    rows = [
        staged_row(target, record, uuid7(), orjson.dumps(record.raw).decode())
        for record in latest.values()
    ]
    await connection.copy_records_to_table(
        _stage_table(target),
        records=rows,
        columns=["id", "external_id", *target.names, "raw", "deleted"],
    )
    if target.price_list_by_currency:
        currencies = sorted(
            {record.currency for record in latest.values() if isinstance(record, PriceItemRecord)}
        )
        await connection.execute(
            _ENSURE_PRICE_LISTS, workspace_id, vendor_id, vendor_name, currencies
        )
    changed = await connection.fetch(
        _upsert_sql(target), workspace_id, vendor_id, link_id, str(run_id), _event_ids(len(rows))
    )
    if remember_seen:
        await connection.execute(
            f"INSERT INTO sync_seen (workspace_id, run_id, stream, external_id) "
            f"SELECT $1, $2, $3, external_id FROM {_stage_table(target)} ON CONFLICT DO NOTHING",
            workspace_id,
            run_id,
            target.stream.value,
        )
    return _counted(changed, len(rows))


async def sweep_unseen(
    connection: asyncpg.Connection,
    *,
    target: Target,
    workspace_id: uuid.UUID,
    vendor_id: uuid.UUID,
    link_id: uuid.UUID,
    run_id: uuid.UUID,
) -> int:
    """After a complete full read: rows of the vendor it did not see become tombstones."""
    unseen = await connection.fetchval(
        _UNSEEN.format(table=target.table), workspace_id, vendor_id, run_id, target.stream.value
    )
    changed = []
    if unseen:
        changed = await connection.fetch(
            _sweep_sql(target),
            workspace_id,
            vendor_id,
            link_id,
            str(run_id),
            _event_ids(len(unseen)),
            unseen,
        )
    await connection.execute(
        "DELETE FROM sync_seen WHERE workspace_id = $1 AND run_id = $2 AND stream = $3",
        workspace_id,
        run_id,
        target.stream.value,
    )
    return len(changed)
