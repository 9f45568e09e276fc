"""The one writer of the change log. Every change appends its events here, in the same
transaction that made it, whether it came through the API, a sync or a webhook.

The per-workspace sequence comes from the workspace's counter row (``workspaces.event_seq``)
with ``UPDATE ... RETURNING``: the row lock is held until commit, so sequence order is commit
order and has no gaps, which is what a CRM reading the change feed needs to resume exactly
where it stopped. A statement appends its events as one block of the sequence.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from uuid_utils import uuid7

from pane.catalogue import PAYLOADS, EventType, Payload
from pane.db.database import Transaction

ACTOR_TYPES = frozenset({"user", "api_key", "vendor_key", "connector", "system"})


@dataclass(frozen=True, slots=True)
class NewEvent:
    type: EventType
    entity_id: uuid.UUID
    data: Payload
    vendor_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        expected = PAYLOADS[self.type]
        if type(self.data) is not expected:
            raise TypeError(f"{self.type} carries {expected.__name__}, not {type(self.data)}")


# An event's wire form (``pane.catalogue.Event``), rendered in SQL from a row of ``numbered``
# (``n``), its ``seq`` and ``id`` (``s``) and the transaction's time as text (``instant``):
# once, at append, because an event never changes. Type and actor names go through
# ``to_json`` for their quoting; ids are cast to uuid and ``data`` to jsonb, whatever a
# caller's ``changes`` holds, so that nothing else can reach the text unquoted.
_DOCUMENT = """(
  '{"seq":' || s.seq || ',"id":"' || s.id || '","type":' || to_json(n.type::text)
  || ',"workspace_id":"' || $1::uuid || '","entity_id":"' || n.entity_id::uuid
  || '","vendor_id":' || coalesce('"' || n.vendor_id::uuid || '"', 'null')
  || ',"actor":{"type":' || to_json(n.actor_type::text)
  || ',"id":' || coalesce('"' || n.actor_id::uuid || '"', 'null')
  || '},"occurred_at":"' || instant.at || '","data":' || n.data::jsonb::text || '}'
)::json"""


def instant_text(moment: str) -> str:
    """SQL rendering the timestamptz ``moment`` as pydantic writes a UTC datetime: in UTC,
    microseconds only when there are any, then ``Z``."""
    utc = f"({moment}) AT TIME ZONE 'UTC'"
    return (
        f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS')"
        f" || CASE WHEN date_trunc('second', {utc}) = {utc} THEN ''"
        f" ELSE to_char({utc}, '.US') END || 'Z'"
    )


def events_from(changes: str, *, ids: str) -> str:
    """The end of a statement whose ``WITH`` list defines ``changes`` (columns ``type,
    entity_id, vendor_id, actor_type, actor_id, data``): an event for each of its rows, in one
    block of the workspace's sequence. ``$1`` is the workspace; ``ids`` names the parameter
    holding at least as many fresh event ids (UUIDv7) as there may be rows. Returns each
    event's ``seq``, ``type`` and ``entity_id`` (computed, not read back: a member who just
    left may still record that they left, though they can no longer read the workspace's
    events).

    This is the only SQL in pane that inserts into ``events``."""
    return f"""
    , numbered AS (
      SELECT c.*, row_number() OVER () AS n, count(*) OVER () AS total FROM {changes} c
    ), seq AS (
      UPDATE workspaces SET event_seq = event_seq + (SELECT count(*) FROM {changes})
      WHERE id = $1 AND EXISTS (SELECT 1 FROM {changes})
      RETURNING event_seq
    ), instant AS (
      SELECT now() AS created_at, {instant_text("now()")} AS at
    ), appended AS (
      INSERT INTO events (workspace_id, seq, id, type, entity_id, vendor_id, actor_type,
                          actor_id, created_at, document)
      SELECT $1, s.seq, s.id, n.type, n.entity_id, n.vendor_id, n.actor_type, n.actor_id,
             instant.created_at, {_DOCUMENT}
      FROM numbered n CROSS JOIN seq CROSS JOIN instant
        CROSS JOIN LATERAL (
          SELECT seq.event_seq - n.total + n.n AS seq, ({ids}::uuid[])[n.n] AS id
        ) s
    )
    SELECT seq.event_seq - n.total + n.n AS seq, n.type, n.entity_id
    FROM numbered n CROSS JOIN seq
    """


def fresh_ids(count: int) -> list[Any]:
    """Ids for as many events as a statement may append (it takes the first it needs). Made
    in Rust (uuid_utils), not by SQL: the sync is limited by PostgreSQL's CPU."""
    return [uuid7() for _ in range(count)]


async def append(
    tx: Transaction, workspace_id: uuid.UUID, sql: str, *args: Any
) -> list[asyncpg.Record]:
    """Run a statement that ends with ``events_from`` (``$1`` the workspace) and note the
    newest sequence number, so the live stream wakes up once the transaction commits."""
    await tx.flush()
    rows: list[asyncpg.Record] = await tx.connection.fetch(sql, workspace_id, *args)
    if rows:
        tx.noted_events(workspace_id, max(int(row["seq"]) for row in rows))
    return rows


_RECORD = (
    "WITH changes AS (SELECT * FROM unnest($2::text[], $3::uuid[], $4::uuid[], $5::text[],"
    " $6::uuid[], $7::jsonb[]) AS c(type, entity_id, vendor_id, actor_type, actor_id, data))"
    + events_from("changes", ids="$8")
)


async def record(
    tx: Transaction,
    *,
    workspace_id: uuid.UUID,
    actor: tuple[str, uuid.UUID | None],
    events: Sequence[NewEvent],
) -> int:
    """Append ``events`` made by ``actor``; the sequence number of the last one."""
    actor_type, actor_id = actor
    if actor_type not in ACTOR_TYPES:
        raise ValueError(f"unknown actor type {actor_type!r}")
    rows = await append(
        tx,
        workspace_id,
        _RECORD,
        [event.type.value for event in events],
        [event.entity_id for event in events],
        [event.vendor_id for event in events],
        [actor_type] * len(events),
        [actor_id] * len(events),
        [event.data.model_dump_json() for event in events],
        fresh_ids(len(events)),
    )
    if len(rows) != len(events):
        raise RuntimeError("events not recorded: the workspace is not visible to this transaction")
    return max(int(row["seq"]) for row in rows)
