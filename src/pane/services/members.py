"""Members of a workspace, their roles, and invitations to join."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from pane.db.tenant import enter_workspace
from pane.errors import Conflict, Forbidden, NotFound
from pane.ids import new_id
from pane.models import Invitation, Membership, User, Workspace
from pane.principal import Role, UserPrincipal, WorkspacePrincipal
from pane.services.audit import record_audit
from pane.services.events import record_event
from pane.services.pagination import Page, decode_cursor, encode_cursor, page_by_id
from pane.services.security import new_opaque_token, token_digest

INVITATION_PREFIX = "inv_"


def _now() -> datetime:
    return datetime.now(UTC)


def _members_query(workspace_id: uuid.UUID) -> Select[Membership, str, str]:
    return (
        select(Membership, User.email, User.name)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id)
    )


def _member_json(row: Row[Membership, str, str]) -> dict[str, Any]:
    membership, email, name = row
    return {
        "user_id": membership.user_id,
        "email": email,
        "name": name,
        "role": membership.role,
        "joined_at": membership.created_at,
    }


async def list_members(
    session: AsyncSession, *, workspace_id: uuid.UUID, cursor: str | None, limit: int
) -> Page:
    """Members in the order they joined."""
    query = _members_query(workspace_id).order_by(Membership.created_at, Membership.user_id)
    if cursor:
        joined, user_id = decode_cursor("members", cursor, (datetime, uuid.UUID))
        query = query.where(
            tuple_(Membership.created_at, Membership.user_id) > tuple_(joined, user_id)
        )
    rows = list(await session.execute(query.limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last: Membership = rows[-1][0]
        next_cursor = encode_cursor("members", [last.created_at, last.user_id])
    return Page(items=[_member_json(row) for row in rows], next_cursor=next_cursor)


async def get_member(
    session: AsyncSession, *, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> dict[str, Any]:
    row = (
        await session.execute(_members_query(workspace_id).where(Membership.user_id == user_id))
    ).first()
    if row is None:
        raise NotFound(f"no member {user_id} in this workspace")
    return _member_json(row)


async def _membership(
    session: AsyncSession, *, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> Membership:
    # Lock the workspace first so concurrent role changes in one workspace take turns: two
    # owners demoting each other at once must not both see a second owner.
    await session.get(Workspace, workspace_id, with_for_update=True)
    membership = await session.get(Membership, (workspace_id, user_id), with_for_update=True)
    if membership is None:
        raise NotFound(f"no member {user_id} in this workspace")
    return membership


async def _owner_count(session: AsyncSession, workspace_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.workspace_id == workspace_id, Membership.role == Role.OWNER.value)
    )
    return int(count or 0)


def _require_may_assign(actor: WorkspacePrincipal, role: Role) -> None:
    if role is Role.OWNER and not (isinstance(actor, UserPrincipal) and actor.role is Role.OWNER):
        raise Forbidden("only an owner can grant or take away the owner role")


async def _log_member_change(
    session: AsyncSession,
    actor: WorkspacePrincipal,
    user_id: uuid.UUID,
    action: str,
    data: dict[str, Any],
) -> None:
    """A membership change goes to the change log and to the audit log alike."""
    await record_event(
        session,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        entity="member",
        entity_id=user_id,
        action=action,
        data=data,
    )
    await record_audit(
        session,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action=f"member.{action}",
        target_type="user",
        target_id=user_id,
        details=data,
    )


async def change_role(
    session: AsyncSession, *, actor: WorkspacePrincipal, user_id: uuid.UUID, role: Role
) -> Membership:
    membership = await _membership(session, workspace_id=actor.workspace_id, user_id=user_id)
    current = Role(membership.role)
    if current is role:
        return membership
    _require_may_assign(actor, role)
    _require_may_assign(actor, current)
    if current is Role.OWNER and await _owner_count(session, actor.workspace_id) <= 1:
        raise Conflict("a workspace keeps at least one owner; make someone else owner first")
    membership.role = role.value
    await session.flush()
    await _log_member_change(
        session, actor, user_id, "role_changed", {"from": current.value, "to": role.value}
    )
    return membership


async def remove_member(
    session: AsyncSession, *, actor: WorkspacePrincipal, user_id: uuid.UUID
) -> None:
    membership = await _membership(session, workspace_id=actor.workspace_id, user_id=user_id)
    role = Role(membership.role)
    leaving = isinstance(actor, UserPrincipal) and actor.user_id == user_id
    if not leaving:
        _require_may_assign(actor, role)
    if role is Role.OWNER and await _owner_count(session, actor.workspace_id) <= 1:
        raise Conflict("the last owner cannot leave; make someone else owner first")
    await session.delete(membership)
    await session.flush()
    await _log_member_change(session, actor, user_id, "removed", {"role": role.value})


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    invitation: Invitation
    token: str


async def invite(
    session: AsyncSession,
    *,
    actor: WorkspacePrincipal,
    email: str,
    role: Role,
    ttl_seconds: int,
) -> IssuedInvitation:
    _require_may_assign(actor, role)
    already = await session.scalar(
        select(Membership.user_id)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.workspace_id == actor.workspace_id,
            func.lower(User.email) == email.lower(),
        )
    )
    if already is not None:
        raise Conflict(f"{email} is already a member of this workspace")
    # The workspace id travels inside the token so acceptance can scope its lookup to it.
    token = f"{INVITATION_PREFIX}{actor.workspace_id.hex}_{new_opaque_token('')}"
    invitation = Invitation(
        workspace_id=actor.workspace_id,
        id=new_id(),
        email=email,
        role=role.value,
        token_hash=token_digest(token),
        invited_by=actor.user_id if isinstance(actor, UserPrincipal) else None,
        expires_at=_now() + timedelta(seconds=ttl_seconds),
    )
    session.add(invitation)
    await session.flush()
    await record_audit(
        session,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action="invitation.created",
        target_type="invitation",
        target_id=invitation.id,
        details={"email": email, "role": role.value},
    )
    return IssuedInvitation(invitation=invitation, token=token)


async def list_invitations(
    session: AsyncSession, *, workspace_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[Invitation], str | None]:
    """Pending invitations, oldest first, and the cursor after them."""
    query = select(Invitation).where(
        Invitation.workspace_id == workspace_id,
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > _now(),
    )
    return await page_by_id(
        session, query, Invitation.id, kind="invitations", cursor=cursor, limit=limit
    )


async def revoke_invitation(
    session: AsyncSession, *, actor: WorkspacePrincipal, invitation_id: uuid.UUID
) -> None:
    invitation = await session.get(Invitation, (actor.workspace_id, invitation_id))
    if invitation is None or invitation.revoked_at is not None or invitation.accepted_at:
        raise NotFound(f"no pending invitation {invitation_id}")
    invitation.revoked_at = _now()
    await session.flush()
    await record_audit(
        session,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action="invitation.revoked",
        target_type="invitation",
        target_id=invitation_id,
    )


def _workspace_of(token: str) -> uuid.UUID | None:
    if not token.startswith(INVITATION_PREFIX):
        return None
    workspace_hex, _, secret = token[len(INVITATION_PREFIX) :].partition("_")
    try:
        return uuid.UUID(hex=workspace_hex) if secret else None
    except ValueError:
        return None


async def accept_invitation(session: AsyncSession, *, user: User, token: str) -> Membership:
    not_found = NotFound("invitation not found, expired or already used")
    workspace_id = _workspace_of(token)
    if workspace_id is None:
        raise not_found
    await enter_workspace(session, workspace_id=workspace_id)
    invitation = await session.scalar(
        select(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.token_hash == token_digest(token),
        )
        .with_for_update()
    )
    if (
        invitation is None
        or invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= _now()
    ):
        raise not_found
    if invitation.email.lower() != user.email.lower():
        raise Forbidden(
            f"this invitation was sent to another email address than yours ({user.email})"
        )
    if await session.get(Membership, (workspace_id, user.id)) is not None:
        raise Conflict("you are already a member of this workspace")
    membership = Membership(workspace_id=workspace_id, user_id=user.id, role=invitation.role)
    session.add(membership)
    invitation.accepted_at = _now()
    invitation.accepted_by = user.id
    await session.flush()
    await record_event(
        session,
        workspace_id=workspace_id,
        actor=("user", user.id),
        entity="member",
        entity_id=user.id,
        action="joined",
        data={"role": invitation.role},
    )
    await record_audit(
        session,
        workspace_id=workspace_id,
        actor=("user", user.id),
        action="invitation.accepted",
        target_type="invitation",
        target_id=invitation.id,
    )
    return membership
