from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status
from starlette.responses import Response

from pane.api.deps import Context, in_workspace
from pane.api.problems import AUTHENTICATED, BODY, problems
from pane.api.schemas import (
    InvitationIn,
    InvitationIssued,
    InvitationOut,
    MemberOut,
    PageOf,
    RoleChange,
)
from pane.api.vendors import Cursor, Limit
from pane.principal import Permission, WorkspacePrincipal
from pane.services import members
from pane.services.lists import DEFAULT_LIMIT

router = APIRouter(prefix="/v1", tags=["members"], responses=problems(*AUTHENTICATED))

MembersReader = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.MEMBERS_READ)]
MembersWriter = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.MEMBERS_WRITE)]


@router.get("/members", response_model=PageOf[MemberOut], responses=problems(400))
async def list_members(
    context: MembersReader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Response:
    """Everyone in the current workspace, with their role, in the order they joined."""
    page = await members.list_members(
        context.tx, workspace_id=context.principal.workspace_id, cursor=cursor, limit=limit
    )
    return Response(page.to_json(), media_type="application/json")


@router.patch("/members/{user_id}", responses=problems(*BODY, 404, 409))
async def change_role(user_id: uuid.UUID, body: RoleChange, context: MembersWriter) -> MemberOut:
    """Change a member's role (owners and admins; only owners grant or remove `owner`, and the
    last owner cannot be demoted)."""
    await members.change_role(context.tx, actor=context.principal, user_id=user_id, role=body.role)
    member = await members.get_member(
        context.tx, workspace_id=context.principal.workspace_id, user_id=user_id
    )
    return MemberOut.model_validate(member, from_attributes=True)


@router.delete(
    "/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 409)
)
async def remove_member(user_id: uuid.UUID, context: MembersReader) -> Response:
    """Remove a member (owners and admins), or leave the workspace yourself."""
    await members.remove_member(context.tx, actor=context.principal, user_id=user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/invitations", status_code=status.HTTP_201_CREATED, responses=problems(*BODY, 409))
async def invite(body: InvitationIn, context: MembersWriter) -> InvitationIssued:
    """Invite someone by email. The response carries the invitation token once; send it to the
    invitee, who accepts it with `POST /v1/invitations/accept` after signing up or in."""
    issued = await members.invite(
        context.tx,
        actor=context.principal,
        email=str(body.email),
        role=body.role,
        ttl_seconds=context.runtime.settings.invitation_ttl_seconds,
    )
    shown = InvitationOut.model_validate(issued.invitation, from_attributes=True)
    return InvitationIssued(**dict(shown), token=issued.token)


@router.get("/invitations", response_model=PageOf[InvitationOut], responses=problems(400))
async def list_invitations(
    context: MembersWriter, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Response:
    """Invitations not yet accepted, revoked or expired, oldest first."""
    page = await members.list_invitations(
        context.tx, workspace_id=context.principal.workspace_id, cursor=cursor, limit=limit
    )
    return Response(page.to_json(), media_type="application/json")


# `:uuid`, so that `/v1/invitations/accept` is not read as an invitation id: other methods on
# it are answered with 405, as for every path.
@router.delete(
    "/invitations/{invitation_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404),
)
async def revoke_invitation(invitation_id: uuid.UUID, context: MembersWriter) -> Response:
    """Withdraw a pending invitation."""
    await members.revoke_invitation(
        context.tx, actor=context.principal, invitation_id=invitation_id
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
