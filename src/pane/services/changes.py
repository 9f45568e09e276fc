"""The change feed: a workspace's events in sequence order, which is commit order.

A reader keeps the ``seq`` of the last event it handled and asks for what came after. Every
committed change arrives exactly once and in order: a sequence number is taken under the
workspace's counter-row lock, held until commit, so no transaction can commit a higher number
before a lower one is committed; a page never runs past what this snapshot has seen committed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson

from pane.catalogue import EventType
from pane.db.database import Database, Transaction
from pane.errors import Gone, Invalid, NotFound
from pane.models.vendor import DISCLOSABLE_LEAD_FIELDS
from pane.principal import Principal, VendorPrincipal
from pane.services.lists import row_count, rows_json

PURGE_BATCH = 10_000

# Which of the reseller's own fields on a lead the transaction's vendor may not read in the
# workspace: what its link does not disclose (as ``vendor_leads`` shows its leads).
_UNDISCLOSED = """
SELECT array(SELECT unnest($2::text[]) EXCEPT SELECT unnest(k.disclosed_lead_fields))
FROM vendor_links k
WHERE k.workspace_id = $1
  AND k.vendor_id = NULLIF(current_setting('pane.vendor_id', true), '')::uuid
"""

_COLUMNS = "e.seq, e.type, e.entity_id, e.vendor_id, e.document::text"
_EVENTS = """
  SELECT * FROM events
  WHERE workspace_id = $1 AND seq > $2
    AND ($3::text[] IS NULL OR type = ANY ($3))
    AND ($4::uuid IS NULL OR vendor_id = $4)
  ORDER BY seq
  LIMIT {limit}
"""  # the page size, written in (row_count)
# The counter is read in the same statement as the events (one snapshot), so a page never
# claims to have seen events it did not read. When there are events, as scalar subqueries
# (evaluated once); a join of the counter to the events, which also answers when there are
# none, cost a third of a page's read more, so it is used only then.
_READ = f"""
SELECT (SELECT event_seq FROM workspaces WHERE id = $1) AS event_seq,
       (SELECT events_purged_seq FROM workspaces WHERE id = $1) AS events_purged_seq,
       {_COLUMNS}
FROM ({_EVENTS}) e
ORDER BY e.seq
"""  # noqa: S608 - fixed SQL
_READ_EMPTY = f"""
WITH counter AS (
  SELECT event_seq, events_purged_seq FROM workspaces WHERE id = $1
)
SELECT c.event_seq, c.events_purged_seq, {_COLUMNS}
FROM counter c
LEFT JOIN LATERAL ({_EVENTS}) e ON true
ORDER BY e.seq
"""  # noqa: S608 - fixed SQL


class Change(NamedTuple):
    """An event of the feed: what a stream filters on, and its wire form as stored
    (``pane.catalogue.Event`` as JSON text), sent as it is (a vendor's view re-renders the
    few it trims)."""

    seq: int
    type: str
    entity_id: uuid.UUID
    vendor_id: uuid.UUID | None
    document: str


@dataclass(frozen=True, slots=True)
class ChangePage:
    items: list[Change]
    next_after: int
    has_more: bool

    def to_json(self) -> bytes:
        return rows_json(
            {
                "items": [orjson.Fragment(item.document) for item in self.items],
                "next_after": self.next_after,
                "has_more": self.has_more,
            }
        )


def _for_vendor(item: Change, hidden: frozenset[str]) -> Change | None:
    """The event as its vendor may read it: without the fields its link does not disclose in
    an update's ``changed`` (of any object: a deal's owner and notes are no more its to read);
    nothing when those were all it changed."""
    if not hidden or '"changed"' not in item.document:
        return item
    event = orjson.loads(item.document)
    changed = event["data"].get("changed")
    if not changed or not (hidden & changed.keys()):
        return item
    kept = {field: pair for field, pair in changed.items() if field not in hidden}
    if not kept:
        return None
    event["data"]["changed"] = kept
    return item._replace(document=orjson.dumps(event).decode())


def workspace_to_read(principal: Principal, workspace_id: uuid.UUID | None) -> uuid.UUID:
    """A workspace principal reads its own workspace; a vendor names one that links it."""
    if isinstance(principal, VendorPrincipal):
        if workspace_id is None:
            raise Invalid(
                "a vendor key reads the changes of one workspace at a time: pass workspace_id",
                errors=[{"field": "query.workspace_id", "message": "required for vendor keys"}],
            )
        return workspace_id
    if workspace_id is not None and workspace_id != principal.workspace_id:
        raise NotFound(f"no workspace {workspace_id}")
    return principal.workspace_id


async def read(
    tx: Transaction,
    *,
    workspace_id: uuid.UUID,
    after: int,
    limit: int,
    types: list[EventType] | None = None,
    vendor_id: uuid.UUID | None = None,
    for_vendor: bool = False,
) -> ChangePage:
    """Events of a workspace after ``after``, oldest first, at most ``limit``, as the
    transaction's principal may see them (``for_vendor``: a vendor's, which shows of the
    reseller's own fields on a lead only those its link discloses). ``next_after`` is where
    to resume: past the last event returned, or, when the page is not full, past every event
    this read has seen committed (filtered ones included, so a filtered reader never
    rescans)."""
    workspace = workspace_id
    arguments = (
        workspace,
        after,
        [event_type.value for event_type in types] if types else None,
        vendor_id,
    )
    page_size = row_count(limit)
    if types or vendor_id is not None:
        await tx.plan_for_values()
    rows = await tx.connection.fetch(_READ.format(limit=page_size), *arguments)
    if not rows or rows[0]["event_seq"] is None:
        rows = await tx.connection.fetch(_READ_EMPTY.format(limit=page_size), *arguments)
    if not rows or rows[0]["event_seq"] is None:
        raise NotFound(f"no workspace {workspace}")
    counter = rows[0]
    if after < counter["events_purged_seq"]:
        kept_for = "the retention period"
        raise Gone(
            f"events up to {counter['events_purged_seq']} are no longer kept ({kept_for}); "
            "resync from the lists (GET /v1/leads?updated_since=… and the others), then follow "
            f"the feed from after={counter['event_seq']}",
            resume_after=counter["event_seq"],
        )
    # Unpacked by position, in _COLUMNS' order: a third cheaper than by name.
    found = [Change(*row[2:]) for row in rows if row["seq"] is not None]
    items = found
    if for_vendor:
        undisclosed = await tx.connection.fetchval(
            _UNDISCLOSED, workspace, list(DISCLOSABLE_LEAD_FIELDS)
        )
        hidden = frozenset(DISCLOSABLE_LEAD_FIELDS if undisclosed is None else undisclosed)
        items = [kept for item in found if (kept := _for_vendor(item, hidden)) is not None]
    has_more = len(found) == limit
    next_after = found[-1].seq if has_more else max(after, counter["event_seq"])
    return ChangePage(items=items, next_after=next_after, has_more=has_more)


async def latest(tx: Transaction, *, workspace_id: uuid.UUID) -> int:
    """The newest committed sequence number of a visible workspace."""
    seq = await tx.connection.fetchval(
        "SELECT event_seq FROM workspaces WHERE id = $1", workspace_id
    )
    if seq is None:
        raise NotFound(f"no workspace {workspace_id}")
    return int(seq)


async def purge_expired(database: Database, *, retention_days: int) -> int:
    """Drop events older than the retention period, in batches, across workspaces."""
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    purged = 0
    while True:
        async with database.transaction() as tx:
            batch = int(
                await tx.connection.fetchval(
                    "SELECT pane_purge_events($1, $2)", cutoff, PURGE_BATCH
                )
            )
        purged += batch
        if batch < PURGE_BATCH:
            return purged
