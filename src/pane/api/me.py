from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, status

from pane.api.deps import AnyContext, Context, UserContext, current_user, in_workspace
from pane.api.problems import AUTHENTICATED, BODY, problems
from pane.api.schemas import (
    AcceptInvitation,
    Me,
    NewWorkspace,
    UserOut,
    WorkspaceOut,
    WorkspaceRename,
)
from pane.principal import (
    ROLE_PERMISSIONS,
    AccountPrincipal,
    ApiKeyPrincipal,
    Permission,
    Role,
    UserPrincipal,
    VendorPrincipal,
    WorkspacePrincipal,
)
from pane.services import auth, members, workspaces

router = APIRouter(prefix="/v1", tags=["me"], responses=problems(*AUTHENTICATED))


@router.get("/me")
async def me(context: AnyContext) -> Me:
    """Who the credentials belong to, the workspace they act in, and what they may do there."""
    principal = context.principal
    if isinstance(principal, UserPrincipal | AccountPrincipal):
        user = await current_user(context)
        memberships = [
            WorkspaceOut.of(workspace, role)
            for workspace, role in await workspaces.memberships_of(context.tx, user_id=user.id)
        ]
        found = Me(
            kind="user",
            user=UserOut.model_validate(user, from_attributes=True),
            workspaces=memberships,
            permissions=[],
        )
        if isinstance(principal, UserPrincipal):
            current = next(ws for ws in memberships if ws.id == principal.workspace_id)
            assert current.role is not None
            found.workspace = current
            found.permissions = sorted(ROLE_PERMISSIONS[current.role])
        return found
    if isinstance(principal, ApiKeyPrincipal):
        workspace = await workspaces.get_workspace(context.tx, workspace_id=principal.workspace_id)
        return Me(
            kind="api_key",
            workspace=WorkspaceOut.of(workspace),
            permissions=sorted(principal.permissions),
        )
    assert isinstance(principal, VendorPrincipal)
    return Me(
        kind="vendor", vendor_id=principal.vendor_id, permissions=sorted(principal.permissions)
    )


@router.post("/workspaces", status_code=status.HTTP_201_CREATED, responses=problems(*BODY))
async def create_workspace(body: NewWorkspace, context: UserContext) -> WorkspaceOut:
    """Create another workspace with yourself as owner. Log in or refresh with its id to use it."""
    user = await current_user(context)
    workspace = await auth.create_workspace(context.tx, name=body.name, owner_id=user.id)
    return WorkspaceOut.of(workspace, Role.OWNER)


@router.patch("/workspace", responses=problems(*BODY))
async def rename_workspace(
    body: WorkspaceRename,
    context: Annotated[Context[WorkspacePrincipal], in_workspace(Permission.WORKSPACE_WRITE)],
) -> WorkspaceOut:
    """Rename the current workspace (owners only)."""
    workspace = await workspaces.rename(context.tx, actor=context.principal, name=body.name)
    return WorkspaceOut.of(workspace)


@router.post("/invitations/accept", responses=problems(*BODY, 404, 409))
async def accept_invitation(body: AcceptInvitation, context: UserContext) -> WorkspaceOut:
    """Join the workspace an invitation was sent for. The invitation must be addressed to your
    account's email. Refresh with the returned workspace id to act in it."""
    user = await current_user(context)
    membership = await members.accept_invitation(context.tx, user=user, token=body.token)
    workspace = await workspaces.get_workspace(context.tx, workspace_id=membership.workspace_id)
    return WorkspaceOut.of(workspace, membership.role)
