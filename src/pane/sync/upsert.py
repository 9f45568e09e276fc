"""The one bulk-upsert path: a page of records into its table, with an event for each row that
really changed, in the caller's transaction.

Rows go by binary ``COPY`` into a session-local staging table (``COPY`` into the tenant table
itself is refused under forced RLS), then one statement moves them: ``INSERT … SELECT …
ON CONFLICT (workspace_id, vendor_id, external_id) DO UPDATE … WHERE <something differs>``, so
unchanged rows are neither rewritten nor reported. An updated row keeps exactly which fields
this write changed, ``{field: [old, new]}``, in ``last_changes`` (worked out in the update
itself, where the old values are at hand: looking them up beforehand, by the page's keys, was
planned as a scan of the vendor's rows whenever a fast-filling table's statistics lagged), and
a second statement appends the events through the one event writer
(``pane.services.events.events_from``) from what the first kept of its rows.

The write is two statements so that a caller can write two pages at once (PostgreSQL's CPU is
the sync's limit, and one connection uses one core): the rows of the next page go in while
the page before it takes its sequence numbers and commits, and the next takes its own only
after that (``turn``). Two pages that share a row are never written at once
(``pane.sync.engine.write_in_turn``).

A change to the vendor's payload alone (``raw``) is stored, so a mapping fix can be replayed
from it, but is no change of the lead: no event, no new version.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache

import asyncpg
import orjson

from pane.connectors.records import PriceItemRecord, Record
from pane.db.database import Transaction
from pane.services import events
from pane.services.events import events_from, fresh_ids
from pane.sync.targets import Target, staged_columns, staged_row

# Awaited by a page's write before it takes the locks the page before it holds (the engine's
# write_in_turn hands each page one).
Turn = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Written:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    # the rows created, changed or deleted
    changed_ids: tuple[uuid.UUID, ...] = ()


def _stage_table(target: Target) -> str:
    return f"pane_stage_{target.table}"


def _written_table(target: Target) -> str:
    return f"pane_written_{target.table}"


@cache
def _stage_ddl(target: Target) -> str:
    columns = ", ".join(f"{column.name} {column.pg_type}" for column in target.columns)
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {_stage_table(target)} "
        f"(id uuid, external_id text, {columns}, raw text, deleted boolean) ON COMMIT DELETE ROWS;"
        f" CREATE TEMP TABLE IF NOT EXISTS {_written_table(target)} (id uuid, external_id text,"
        " deleted_at timestamptz, version integer, inserted boolean, diff jsonb)"
        " ON COMMIT DELETE ROWS"
    )


def _as_json(target: Target, name: str, alias: str) -> str:
    # Money and other numerics travel as decimal strings, as the API gives them.
    kinds = {column.name: column.pg_type for column in target.columns}
    return f"{alias}.{name}::text" if kinds.get(name) == "numeric" else f"{alias}.{name}"


def _diff(target: Target, old: str, new: str, new_deleted_at: str) -> str:
    """``{field: [old, new]}`` for the fields that differ between rows ``old`` and ``new``."""
    pairs = [
        f"'{name}', CASE WHEN {old}.{name} IS DISTINCT FROM {new}.{name} THEN jsonb_build_array("
        f"{_as_json(target, name, old)}, {_as_json(target, name, new)}) END"
        for name in target.names
    ]
    pairs.append(
        f"'deleted_at', CASE WHEN {old}.deleted_at IS DISTINCT FROM {new_deleted_at}"
        f" THEN jsonb_build_array({old}.deleted_at, {new_deleted_at}) END"
    )
    return f"jsonb_strip_nulls(jsonb_build_object({', '.join(pairs)}))"


@cache
def _upsert_sql(target: Target) -> str:
    names = target.names
    differs_now = ", ".join([*(f"t.{name}" for name in names), "t.deleted_at IS NULL"])
    differs_new = ", ".join(
        [*(f"EXCLUDED.{name}" for name in names), "EXCLUDED.deleted_at IS NULL"]
    )
    changed_now = f"({differs_now}) IS DISTINCT FROM ({differs_new})"
    deleted_at = (
        "CASE WHEN EXCLUDED.deleted_at IS NULL THEN NULL"
        " ELSE coalesce(t.deleted_at, EXCLUDED.deleted_at) END"
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
    version_set = (
        f", version = CASE WHEN {changed_now} THEN t.version + 1 ELSE t.version END"
        if target.versioned
        else ""
    )
    # In SET, every expression reads the row as it was: last_changes gets exactly what this
    # write changes, and RETURNING hands it on (an updated row's old values are nowhere else)
    # to the written table, which _events_sql reads.
    return f"""
    WITH written AS (
      INSERT INTO {target.table} AS t
        (workspace_id, id, vendor_id, external_id, {", ".join(names)}{price_list_column},
         raw, deleted_at)
      SELECT $1, s.id, $2, s.external_id, {", ".join(f"s.{name}" for name in names)}
             {price_list_value}, s.raw::jsonb, CASE WHEN s.deleted THEN now() END
      FROM {_stage_table(target)} s {price_list_join}
      ON CONFLICT (workspace_id, vendor_id, external_id) DO UPDATE SET
        {", ".join(f"{name} = EXCLUDED.{name}" for name in names)}{price_list_set},
        raw = EXCLUDED.raw,
        deleted_at = {deleted_at},
        updated_at = CASE WHEN {changed_now} THEN now() ELSE t.updated_at END{version_set},
        last_changes = CASE WHEN {changed_now}
                            THEN {_diff(target, "t", "EXCLUDED", deleted_at)}
                            ELSE '{{}}'::jsonb END
      WHERE ({changed_now} OR t.raw IS DISTINCT FROM EXCLUDED.raw)
        AND coalesce(EXCLUDED.vendor_updated_at >= t.vendor_updated_at, true)
      RETURNING t.id, t.external_id, t.deleted_at,
        {"t.version" if target.versioned else "NULL::integer AS version"},
        t.xmax = 0 AS inserted, coalesce(t.last_changes, '{{}}'::jsonb) AS diff
    )
    INSERT INTO {_written_table(target)} SELECT * FROM written
    """


@cache
def _events_sql(target: Target) -> str:
    """The events of what ``_upsert_sql`` wrote: ``$1`` the workspace, ``$2`` the vendor,
    ``$3`` the link (the actor), ``$4`` the run or ``$6`` the webhook delivery that brought
    them, and ``$5`` fresh event ids."""
    brought_by = (
        "jsonb_build_object('external_id', c.external_id, 'run_id', $4::text)"
        " || CASE WHEN $6::text IS NULL THEN '{}'::jsonb"
        " ELSE jsonb_build_object('delivery_id', $6::text) END"
    )
    return f"""
    WITH changes AS (
      SELECT
        CASE WHEN c.deleted_at IS NOT NULL AND (c.inserted OR c.diff ? 'deleted_at')
               THEN '{target.entity}.deleted'
             WHEN c.inserted THEN '{target.entity}.created'
             ELSE '{target.entity}.updated' END AS type,
        c.id AS entity_id, $2::uuid AS vendor_id, 'connector'::text AS actor_type,
        $3::uuid AS actor_id,
        CASE WHEN c.inserted OR (c.deleted_at IS NOT NULL AND c.diff ? 'deleted_at')
          THEN {brought_by}
          ELSE {brought_by} || jsonb_build_object('changed', c.diff, 'version', c.version)
        END AS data
      FROM {_written_table(target)} c
      WHERE c.inserted OR c.diff <> '{{}}'::jsonb
    )
    {events_from("changes", ids="$5")}
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
    WITH swept AS (
      UPDATE {target.table} t SET deleted_at = now(), updated_at = now(){version},
        last_changes = jsonb_build_object('deleted_at', jsonb_build_array(NULL, now()))
      WHERE t.workspace_id = $1 AND t.vendor_id = $2 AND t.external_id = ANY ($6::text[])
        AND t.deleted_at IS NULL
      RETURNING t.id, t.external_id
    ), changes AS (
      SELECT '{target.entity}.deleted'::text AS type, s.id AS entity_id, $2::uuid AS vendor_id,
             'connector'::text AS actor_type, $3::uuid AS actor_id,
             jsonb_build_object('external_id', s.external_id, 'run_id', $4::text) AS data
      FROM swept s
    )
    {events_from("changes", ids="$5")}
    """


_ENSURE_PRICE_LISTS = """
INSERT INTO price_lists (workspace_id, id, vendor_id, external_id, name, currency)
SELECT $1, pane_uuid7(), $2, c, $3 || ' (' || c || ')', c FROM unnest($4::text[]) AS x(c)
ON CONFLICT (workspace_id, vendor_id, external_id) DO NOTHING
"""


def _counted(appended: list[asyncpg.Record], target: Target, staged: int) -> Written:
    types = Counter(row["type"] for row in appended)
    created = types[target.event("created").value]
    updated = types[target.event("updated").value]
    deleted = types[target.event("deleted").value]
    return Written(
        created=created,
        updated=updated,
        deleted=deleted,
        unchanged=staged - created - updated - deleted,
        changed_ids=tuple(row["entity_id"] for row in appended),
    )


async def write_page(
    tx: Transaction,
    *,
    target: Target,
    records: list[Record],
    workspace_id: uuid.UUID,
    vendor_id: uuid.UUID,
    vendor_name: str,
    link_id: uuid.UUID,
    run_id: uuid.UUID | None,
    delivery_id: uuid.UUID | None = None,
    remember_seen: bool = False,
    turn: Turn | None = None,
) -> Written:
    """Upsert ``records`` (the caller's transaction, scoped to the workspace) and append their
    events, which name the sync run or the webhook delivery that brought them. A record the
    vendor changed before the row's own last change (an older update arriving late) changes
    nothing. With ``remember_seen`` (a full resync) their ids are noted for the final sweep.
    ``turn``, when given, is awaited between the rows and their events: until it returns, this
    transaction holds no lock the page before it needs, unless both write a row (see above).
    One page per transaction: the staging rows are cleared at commit."""
    latest: dict[str, Record] = {record.external_id: record for record in records}
    if not latest:
        return Written()
    connection = tx.connection
    await connection.execute(_stage_ddl(target))
    # Ids are made here, not by pane_uuid7() in SQL: PostgreSQL's CPU is the sync's limit, and
    # a Rust-made UUIDv7 costs a twentieth of the SQL one. A row that already exists keeps its
    # id; its fresh one is simply not used.
    ids = fresh_ids(len(latest))
    rows = [
        staged_row(target, record, new_id, orjson.dumps(record.raw).decode())
        for record, new_id in zip(latest.values(), ids, strict=True)
    ]
    await connection.copy_records_to_table(
        _stage_table(target),
        records=rows,
        columns=staged_columns(target),
    )
    if target.price_list_by_currency:
        currencies = sorted(
            {record.currency for record in latest.values() if isinstance(record, PriceItemRecord)}
        )
        await connection.execute(
            _ENSURE_PRICE_LISTS, workspace_id, vendor_id, vendor_name, currencies
        )
    await connection.execute(_upsert_sql(target), workspace_id, vendor_id)
    if remember_seen:
        await connection.execute(
            f"INSERT INTO sync_seen (workspace_id, run_id, stream, external_id) "
            f"SELECT $1, $2, $3, external_id FROM {_stage_table(target)} ON CONFLICT DO NOTHING",
            workspace_id,
            run_id,
            target.stream.value,
        )
    if turn is not None:
        await turn()
    appended = await events.append(
        tx,
        workspace_id,
        _events_sql(target),
        vendor_id,
        link_id,
        str(run_id) if run_id else None,
        fresh_ids(len(rows)),
        str(delivery_id) if delivery_id else None,
    )
    # a record superseded by a later one of the same id in the page counts as unchanged
    return _counted(appended, target, len(records))


async def sweep_unseen(
    tx: Transaction,
    *,
    target: Target,
    workspace_id: uuid.UUID,
    vendor_id: uuid.UUID,
    link_id: uuid.UUID,
    run_id: uuid.UUID,
) -> int:
    """After a complete full read: rows of the vendor it did not see become tombstones."""
    connection = tx.connection
    unseen = await connection.fetchval(
        _UNSEEN.format(table=target.table), workspace_id, vendor_id, run_id, target.stream.value
    )
    swept = 0
    if unseen:
        appended = await events.append(
            tx,
            workspace_id,
            _sweep_sql(target),
            vendor_id,
            link_id,
            str(run_id),
            fresh_ids(len(unseen)),
            unseen,
        )
        swept = len(appended)
    await connection.execute(
        "DELETE FROM sync_seen WHERE workspace_id = $1 AND run_id = $2 AND stream = $3",
        workspace_id,
        run_id,
        target.stream.value,
    )
    return swept
