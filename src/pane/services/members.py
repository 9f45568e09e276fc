"""Members of a workspace, their roles, and invitations to join."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, func, select

from pane.catalogue import (
    EventType,
    InvitationState,
    MemberRole,
    MemberRoleChanged,
    Payload,
)
from pane.db.database import Transaction, workspace_scope
from pane.errors import Conflict, Forbidden, NotFound
from pane.ids import new_id
from pane.models import Invitation, Membership, User, Workspace
from pane.principal import ROLE_PERMISSIONS, Permission, Role, UserPrincipal, WorkspacePrincipal
from pane.services import events
from pane.services.audit import record_audit
from pane.services.events import NewEvent
from pane.services.lists import BY_ID, Key, ListQuery, Page
from pane.services.security import new_opaque_token, token_digest

INVITATION_PREFIX = "inv_"


def _now() -> datetime:
    return datetime.now(UTC)


async def list_members(
    tx: Transaction, *, workspace_id: uuid.UUID, cursor: str | None, limit: int
) -> Page:
    """Members in the order they joined."""
    query = ListQuery(
        kind="members",
        source="memberships m JOIN users u ON u.id = m.user_id",
        columns="m.user_id, u.email, u.name, m.role, m.created_at AS joined_at",
        order=(Key("m.created_at", "joined_at", datetime), Key("m.user_id", "user_id", uuid.UUID)),
    )
    return await query.within("m.workspace_id", workspace_id).page(tx, cursor=cursor, limit=limit)


async def get_member(
    tx: Transaction, *, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> Row[uuid.UUID, str, str, str, datetime]:
    """The member as the member list shows them (``user_id``, ``email``, ``name``, ``role``,
    ``joined_at``)."""
    row = (
        await tx.session.execute(
            select(
                Membership.user_id,
                User.email,
                User.name,
                Membership.role,
                Membership.created_at.label("joined_at"),
            )
            .join(User, User.id == Membership.user_id)
            .where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no member {user_id} in this workspace")
    return row


async def _membership(
    tx: Transaction, *, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> Membership:
    # Lock the workspace first so concurrent role changes in one workspace take turns: two
    # owners demoting each other at once must not both see a second owner.
    await tx.session.get(Workspace, workspace_id, with_for_update=True)
    membership = await tx.session.get(Membership, (workspace_id, user_id), with_for_update=True)
    if membership is None:
        raise NotFound(f"no member {user_id} in this workspace")
    return membership


async def _owner_count(tx: Transaction, workspace_id: uuid.UUID) -> int:
    count = await tx.session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.workspace_id == workspace_id, Membership.role == Role.OWNER.value)
    )
    return int(count or 0)


async def current_role(tx: Transaction, actor: WorkspacePrincipal) -> Role | None:
    """The role the actor holds now, read from the database (a token's role may be stale);
    None for an API key, which holds scopes, not a role."""
    if not isinstance(actor, UserPrincipal):
        return None
    role = await tx.session.scalar(
        select(Membership.role).where(
            Membership.workspace_id == actor.workspace_id, Membership.user_id == actor.user_id
        )
    )
    if role is None:
        raise Forbidden("you are no longer a member of this workspace")
    return Role(role)


def _require_may_assign(actor_role: Role | None, role: Role) -> None:
    if role is Role.OWNER and actor_role is not Role.OWNER:
        raise Forbidden("only an owner can grant or take away the owner role")


async def _log(
    tx: Transaction,
    actor: WorkspacePrincipal,
    entity_id: uuid.UUID,
    event: EventType,
    data: Payload,
    *,
    audit_details: dict[str, Any] | None = None,
) -> None:
    """A membership change goes to the change log and to the audit log alike."""
    await events.record(
        tx,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        events=[NewEvent(event, entity_id, data)],
    )
    await record_audit(
        tx,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action=event.value,
        target_type="invitation" if event.entity == "invitation" else "user",
        target_id=entity_id,
        details=data.model_dump(mode="json") if audit_details is None else audit_details,
    )


async def change_role(
    tx: Transaction, *, actor: WorkspacePrincipal, user_id: uuid.UUID, role: Role
) -> Membership:
    # The actor's role as the request began, read before waiting for the workspace's lock.
    actor_role = await current_role(tx, actor)
    membership = await _membership(tx, workspace_id=actor.workspace_id, user_id=user_id)
    current = Role(membership.role)
    if current is role:
        return membership
    _require_may_assign(actor_role, role)
    _require_may_assign(actor_role, current)
    if current is Role.OWNER and await _owner_count(tx, actor.workspace_id) <= 1:
        raise Conflict("a workspace keeps at least one owner; make someone else owner first")
    membership.role = role.value
    await tx.session.flush()
    changed = MemberRoleChanged(changed={"role": [current.value, role.value]})
    await _log(
        tx,
        actor,
        user_id,
        EventType.MEMBER_ROLE_CHANGED,
        changed,
        audit_details={"from": current.value, "to": role.value},
    )
    return membership


async def remove_member(tx: Transaction, *, actor: WorkspacePrincipal, user_id: uuid.UUID) -> None:
    """Anyone may leave; removing someone else needs members:write (and owner to remove an
    owner)."""
    leaving = isinstance(actor, UserPrincipal) and actor.user_id == user_id
    actor_role = await current_role(tx, actor)
    if isinstance(actor, UserPrincipal):
        assert actor_role is not None
        permissions = ROLE_PERMISSIONS[actor_role]
    else:
        permissions = actor.permissions
    if not leaving and Permission.MEMBERS_WRITE not in permissions:
        raise Forbidden("this action needs the members:write permission")
    membership = await _membership(tx, workspace_id=actor.workspace_id, user_id=user_id)
    role = Role(membership.role)
    if not leaving:
        _require_may_assign(actor_role, role)
    if role is Role.OWNER and await _owner_count(tx, actor.workspace_id) <= 1:
        raise Conflict("the last owner cannot leave; make someone else owner first")
    await tx.session.delete(membership)
    await tx.session.flush()
    await _log(tx, actor, user_id, EventType.MEMBER_REMOVED, MemberRole(role=role.value))


@dataclass(frozen=True, slots=True)
class IssuedInvitation:
    invitation: Invitation
    token: str


async def invite(
    tx: Transaction,
    *,
    actor: WorkspacePrincipal,
    email: str,
    role: Role,
    ttl_seconds: int,
) -> IssuedInvitation:
    _require_may_assign(await current_role(tx, actor), role)
    already = await tx.session.scalar(
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
    tx.session.add(invitation)
    await tx.session.flush()
    state = InvitationState(email=email, role=role.value)
    await _log(tx, actor, invitation.id, EventType.INVITATION_CREATED, state)
    return IssuedInvitation(invitation=invitation, token=token)


async def list_invitations(
    tx: Transaction, *, workspace_id: uuid.UUID, cursor: str | None, limit: int
) -> Page:
    """Pending invitations, oldest first."""
    query = ListQuery(
        kind="invitations",
        source="invitations",
        columns="id, email, role, created_at, expires_at",
        order=BY_ID,
    )
    query.within("workspace_id", workspace_id)
    query.clause("accepted_at IS NULL").clause("revoked_at IS NULL").later_than_now("expires_at")
    return await query.page(tx, cursor=cursor, limit=limit)


async def revoke_invitation(
    tx: Transaction, *, actor: WorkspacePrincipal, invitation_id: uuid.UUID
) -> None:
    invitation = await tx.session.get(Invitation, (actor.workspace_id, invitation_id))
    if invitation is None or invitation.revoked_at is not None or invitation.accepted_at:
        raise NotFound(f"no pending invitation {invitation_id}")
    invitation.revoked_at = _now()
    await tx.session.flush()
    state = InvitationState(email=invitation.email, role=invitation.role)
    await _log(tx, actor, invitation_id, EventType.INVITATION_REVOKED, state)


def _workspace_of(token: str) -> uuid.UUID | None:
    if not token.startswith(INVITATION_PREFIX):
        return None
    workspace_hex, _, secret = token[len(INVITATION_PREFIX) :].partition("_")
    try:
        return uuid.UUID(hex=workspace_hex) if secret else None
    except ValueError:
        return None


async def accept_invitation(tx: Transaction, *, user: User, token: str) -> Membership:
    not_found = NotFound("invitation not found, expired or already used")
    workspace_id = _workspace_of(token)
    if workspace_id is None:
        raise not_found
    await tx.enter(workspace_scope(workspace_id))
    invitation = await tx.session.scalar(
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
    if await tx.session.get(Membership, (workspace_id, user.id)) is not None:
        raise Conflict("you are already a member of this workspace")
    membership = Membership(workspace_id=workspace_id, user_id=user.id, role=invitation.role)
    tx.session.add(membership)
    invitation.accepted_at = _now()
    invitation.accepted_by = user.id
    await tx.session.flush()
    await events.record(
        tx,
        workspace_id=workspace_id,
        actor=("user", user.id),
        events=[NewEvent(EventType.MEMBER_JOINED, user.id, MemberRole(role=invitation.role))],
    )
    await record_audit(
        tx,
        workspace_id=workspace_id,
        actor=("user", user.id),
        action="invitation.accepted",
        target_type="invitation",
        target_id=invitation.id,
    )
    return membership
