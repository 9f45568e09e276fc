"""The change log. Each change appends an event in the same transaction that made it.

The per-workspace sequence is taken from ``workspaces.event_seq`` with ``UPDATE ... RETURNING``:
the row lock is held until commit, so sequence order is commit order and has no gaps, which is
what a CRM reading the change feed needs to resume exactly where it stopped.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from pane.ids import new_id

_APPEND = text(
    """
    WITH next AS (
      UPDATE workspaces SET event_seq = event_seq + 1 WHERE id = :workspace_id
      RETURNING event_seq
    )
    INSERT INTO events
      (workspace_id, seq, id, entity, entity_id, vendor_id, action, actor_type, actor_id, data)
    SELECT :workspace_id, next.event_seq, :id, :entity, :entity_id, :vendor_id, :action,
           :actor_type, :actor_id, CAST(:data AS jsonb)
    FROM next
    RETURNING seq
    """
)


async def record_event(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    actor: tuple[str, uuid.UUID | None],
    entity: str,
    entity_id: uuid.UUID,
    action: str,
    data: dict[str, Any],
    vendor_id: uuid.UUID | None = None,
) -> int:
    seq = await session.scalar(
        _APPEND,
        {
            "workspace_id": workspace_id,
            "id": new_id(),
            "entity": entity,
            "entity_id": entity_id,
            "vendor_id": vendor_id,
            "action": action,
            "actor_type": actor[0],
            "actor_id": actor[1],
            "data": orjson.dumps(data, default=str).decode(),
        },
    )
    if seq is None:
        raise RuntimeError("event not recorded: the workspace is not visible to this transaction")
    return int(seq)
