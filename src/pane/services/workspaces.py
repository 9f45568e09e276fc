"""Workspaces a user belongs to, and renaming the current one."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from pane.catalogue import EventType, WorkspaceRenamed
from pane.db.database import Transaction
from pane.errors import NotFound
from pane.models import Membership, Workspace
from pane.principal import WorkspacePrincipal
from pane.services import events
from pane.services.audit import record_audit
from pane.services.events import NewEvent


async def memberships_of(tx: Transaction, *, user_id: uuid.UUID) -> list[tuple[Workspace, str]]:
    """The workspaces the user belongs to, with their current role, in the order joined."""
    rows = await tx.session.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.created_at)
    )
    return [(workspace, role) for workspace, role in rows]


async def get_workspace(tx: Transaction, *, workspace_id: uuid.UUID) -> Workspace:
    workspace = await tx.session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound(f"no workspace {workspace_id}")
    return workspace


async def rename(tx: Transaction, *, actor: WorkspacePrincipal, name: str) -> Workspace:
    workspace = await get_workspace(tx, workspace_id=actor.workspace_id)
    previous = workspace.name
    if previous == name:
        return workspace
    workspace.name = name
    await tx.session.flush()
    await events.record(
        tx,
        workspace_id=workspace.id,
        actor=actor.actor,
        events=[
            NewEvent(
                EventType.WORKSPACE_RENAMED,
                workspace.id,
                WorkspaceRenamed(changed={"name": [previous, name]}),
            )
        ],
    )
    await record_audit(
        tx,
        workspace_id=workspace.id,
        actor=actor.actor,
        action="workspace.renamed",
        target_type="workspace",
        target_id=workspace.id,
        details={"from": previous, "to": name},
    )
    return workspace
