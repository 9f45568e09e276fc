from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, status
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

router = APIRouter(prefix="/v1", tags=["me"])


@router.get("/me", response_model=Me)
async def me(context: AnyContext) -> Response:
    """Who the credentials belong to, the workspace they act in, and what they may do there."""
    principal = context.principal
    body: dict[str, Any] = {"permissions": [], "workspaces": []}
    if isinstance(principal, UserPrincipal | AccountPrincipal):
        user = await current_user(context)
        body["kind"] = "user"
        body["user"] = {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "created_at": user.created_at,
        }
        body["workspaces"] = await workspaces.memberships_of(context.tx, user_id=user.id)
        if isinstance(principal, UserPrincipal):
            current = next(ws for ws in body["workspaces"] if ws["id"] == principal.workspace_id)
            body["workspace"] = current
            body["permissions"] = sorted(ROLE_PERMISSIONS[Role(current["role"])])
    elif isinstance(principal, ApiKeyPrincipal):
        workspace = await workspaces.get_workspace(context.tx, workspace_id=principal.workspace_id)
        body["kind"] = "api_key"
        body["workspace"] = workspaces.workspace_json(workspace)
        body["permissions"] = sorted(principal.permissions)
    else:
        assert isinstance(principal, VendorPrincipal)
        body["kind"] = "vendor"
        body["vendor_id"] = principal.vendor_id
        body["permissions"] = sorted(principal.permissions)
    return json_response(body)


@router.post("/workspaces", response_model=WorkspaceOut, status_code=status.HTTP_201_CREATED)
async def create_workspace(body: NewWorkspace, context: UserContext) -> Response:
    """Create another workspace with yourself as owner. Log in or refresh with its id to use it."""
    user = await current_user(context)
    workspace = await auth.create_workspace(context.tx, name=body.name, owner_id=user.id)
    return json_response(
        workspaces.workspace_json(workspace, Role.OWNER), status_code=status.HTTP_201_CREATED
    )


@router.patch("/workspace", response_model=WorkspaceOut)
async def rename_workspace(
    body: WorkspaceRename,
    context: Annotated[Context[WorkspacePrincipal], in_workspace(Permission.WORKSPACE_WRITE)],
) -> Response:
    """Rename the current workspace (owners only)."""
    workspace = await workspaces.rename(context.tx, actor=context.principal, name=body.name)
    return json_response(workspaces.workspace_json(workspace))


@router.post("/invitations/accept", response_model=WorkspaceOut)
async def accept_invitation(body: AcceptInvitation, context: UserContext) -> Response:
    """Join the workspace an invitation was sent for. The invitation must be addressed to your
    account's email. Refresh with the returned workspace id to act in it."""
    user = await current_user(context)
    membership = await members.accept_invitation(context.tx, user=user, token=body.token)
    workspace = await workspaces.get_workspace(context.tx, workspace_id=membership.workspace_id)
    return json_response(workspaces.workspace_json(workspace, membership.role))
