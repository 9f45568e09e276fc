"""Who did what, when, from where. The request's id and client address come from the logging
context bound by the request middleware, so services need not know about HTTP."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from pane.db.database import Transaction
from pane.ids import new_id
from pane.models import AuditEntry


async def record_audit(
    tx: Transaction,
    *,
    workspace_id: uuid.UUID,
    actor: tuple[str, uuid.UUID | None],
    action: str,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    context = structlog.contextvars.get_contextvars()
    tx.session.add(
        AuditEntry(
            workspace_id=workspace_id,
            id=new_id(),
            actor_type=actor[0],
            actor_id=actor[1],
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            ip=context.get("client_ip"),
            request_id=context.get("request_id"),
            details=details or {},
        )
    )
    await tx.session.flush()
