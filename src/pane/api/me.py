from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, status
from sqlalchemy import select
from starlette.responses import Response

from pane.api.deps import AnyContext, Context, UserContext, current_user, in_workspace
from pane.api.schemas import (
    AcceptInvitation,
    Me,
    NewWorkspace,
    WorkspaceOut,
    WorkspaceRename,
    json_response,
)
from pane.models import Membership, Workspace
from pane.principal import (
    AccountPrincipal,
    ApiKeyPrincipal,
    Permission,
    UserPrincipal,
    VendorPrincipal,
    WorkspacePrincipal,
)
from pane.services import auth, members
from pane.services.audit import record_audit
from pane.services.events import record_event

router = APIRouter(prefix="/v1", tags=["me"])


async def _workspaces_of(context: Context[Any]) -> list[dict[str, Any]]:
    principal = context.principal
    rows = await context.session.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == principal.user_id)
        .order_by(Membership.created_at)
    )
    return [
        {"id": ws.id, "name": ws.name, "role": role, "created_at": ws.created_at}
        for ws, role in rows
    ]


@router.get("/me", response_model=Me)
async def me(context: AnyContext) -> Response:
    """Who the credentials belong to, the workspace they act in, and what they may do there."""
    principal = context.principal
    body: dict[str, Any] = {"permissions": sorted(principal.permissions), "workspaces": []}
    if isinstance(principal, UserPrincipal | AccountPrincipal):
        user = await current_user(context)
        body["kind"] = "user"
        body["user"] = {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "created_at": user.created_at,
        }
        body["workspaces"] = await _workspaces_of(context)
        if isinstance(principal, UserPrincipal):
            body["workspace"] = next(
                ws for ws in body["workspaces"] if ws["id"] == principal.workspace_id
            )
    elif isinstance(principal, ApiKeyPrincipal):
        workspace = await context.session.get(Workspace, principal.workspace_id)
        assert workspace is not None
        body["kind"] = "api_key"
        body["workspace"] = {
            "id": workspace.id,
            "name": workspace.name,
            "created_at": workspace.created_at,
        }
    else:
        assert isinstance(principal, VendorPrincipal)
        body["kind"] = "vendor"
        body["vendor_id"] = principal.vendor_id
    return json_response(body)


@router.post("/workspaces", response_model=WorkspaceOut, status_code=status.HTTP_201_CREATED)
async def create_workspace(body: NewWorkspace, context: UserContext) -> Response:
    """Create another workspace with yourself as owner. Log in or refresh with its id to use it."""
    user = await current_user(context)
    workspace = await auth.create_workspace(context.session, name=body.name, owner_id=user.id)
    return json_response(
        {
            "id": workspace.id,
            "name": workspace.name,
            "role": "owner",
            "created_at": workspace.created_at,
        },
        status_code=status.HTTP_201_CREATED,
    )


@router.patch("/workspace", response_model=WorkspaceOut)
async def rename_workspace(
    body: WorkspaceRename,
    context: Annotated[Context[WorkspacePrincipal], in_workspace(Permission.WORKSPACE_WRITE)],
) -> Response:
    """Rename the current workspace (owners only)."""
    workspace = await context.session.get(Workspace, context.principal.workspace_id)
    assert workspace is not None
    previous = workspace.name
    workspace.name = body.name
    await context.session.flush()
    await record_event(
        context.session,
        workspace_id=workspace.id,
        actor=context.principal.actor,
        entity="workspace",
        entity_id=workspace.id,
        action="renamed",
        data={"from": previous, "to": body.name},
    )
    await record_audit(
        context.session,
        workspace_id=workspace.id,
        actor=context.principal.actor,
        action="workspace.renamed",
        target_type="workspace",
        target_id=workspace.id,
        details={"from": previous, "to": body.name},
    )
    return json_response(
        {"id": workspace.id, "name": workspace.name, "created_at": workspace.created_at}
    )


@router.post("/invitations/accept", response_model=WorkspaceOut)
async def accept_invitation(body: AcceptInvitation, context: UserContext) -> Response:
    """Join the workspace an invitation was sent for. The invitation must be addressed to your
    account's email. Refresh with the returned workspace id to act in it."""
    user = await current_user(context)
    membership = await members.accept_invitation(context.session, user=user, token=body.token)
    workspace = await context.session.get(Workspace, membership.workspace_id)
    assert workspace is not None
    return json_response(
        {
            "id": workspace.id,
            "name": workspace.name,
            "role": membership.role,
            "created_at": workspace.created_at,
        }
    )
