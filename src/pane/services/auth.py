"""Sign-up, login, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from pane.catalogue import EventType, WorkspaceCreated
from pane.db.database import Transaction, user_scope, workspace_scope
from pane.errors import Conflict, Forbidden, Unauthenticated
from pane.ids import new_id
from pane.models import Membership, RefreshToken, User, Workspace
from pane.principal import Role
from pane.services import events
from pane.services.audit import record_audit
from pane.services.events import NewEvent
from pane.services.security import (
    AccessTokens,
    hash_password,
    new_opaque_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)

REFRESH_PREFIX = "prt_"


@dataclass(frozen=True, slots=True)
class Seat:
    """A user's place in a workspace: which one, and with what role."""

    workspace_id: uuid.UUID
    role: str


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    workspace_id: uuid.UUID | None


def _now() -> datetime:
    return datetime.now(UTC)


async def _issue(
    tx: Transaction,
    *,
    tokens: AccessTokens,
    refresh_ttl: int,
    user_id: uuid.UUID,
    seat: Seat | None,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    workspace_id = seat.workspace_id if seat else None
    refresh = new_opaque_token(REFRESH_PREFIX)
    tx.session.add(
        RefreshToken(
            id=new_id(),
            family_id=family_id or new_id(),
            user_id=user_id,
            token_hash=token_digest(refresh),
            workspace_hint=workspace_id,
            expires_at=_now() + timedelta(seconds=refresh_ttl),
        )
    )
    await tx.session.flush()
    return TokenPair(
        access_token=tokens.issue(
            user_id=user_id, workspace_id=workspace_id, role=seat.role if seat else None
        ),
        refresh_token=refresh,
        expires_in=tokens.ttl_seconds,
        workspace_id=workspace_id,
    )


async def find_user_by_email(tx: Transaction, email: str) -> User | None:
    return await tx.session.scalar(select(User).where(func.lower(User.email) == email.lower()))


async def create_user(tx: Transaction, *, email: str, password: str, name: str) -> User:
    if await find_user_by_email(tx, email) is not None:
        raise Conflict(f"an account with email {email} already exists")
    user = User(id=new_id(), email=email, name=name, password_hash=hash_password(password))
    tx.session.add(user)
    try:
        await tx.session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an account with email {email} already exists") from exc
    return user


async def create_workspace(tx: Transaction, *, name: str, owner_id: uuid.UUID) -> Workspace:
    workspace = Workspace(id=new_id(), name=name)
    await tx.enter(workspace_scope(workspace.id))
    tx.session.add(workspace)
    await tx.session.flush()
    tx.session.add(Membership(workspace_id=workspace.id, user_id=owner_id, role=Role.OWNER.value))
    await tx.session.flush()
    actor = ("user", owner_id)
    await events.record(
        tx,
        workspace_id=workspace.id,
        actor=actor,
        events=[NewEvent(EventType.WORKSPACE_CREATED, workspace.id, WorkspaceCreated(name=name))],
    )
    await record_audit(
        tx,
        workspace_id=workspace.id,
        actor=actor,
        action="workspace.created",
        target_type="workspace",
        target_id=workspace.id,
    )
    return workspace


async def sign_up(
    tx: Transaction,
    *,
    email: str,
    password: str,
    name: str,
    workspace_name: str,
    tokens: AccessTokens,
    refresh_ttl: int,
) -> tuple[User, Workspace, TokenPair]:
    user = await create_user(tx, email=email, password=password, name=name)
    workspace = await create_workspace(tx, name=workspace_name, owner_id=user.id)
    pair = await _issue(
        tx,
        tokens=tokens,
        refresh_ttl=refresh_ttl,
        user_id=user.id,
        seat=Seat(workspace.id, Role.OWNER.value),
    )
    return user, workspace, pair


async def _pick_workspace(
    tx: Transaction, *, user_id: uuid.UUID, wanted: uuid.UUID | None
) -> Seat | None:
    await tx.enter(user_scope(user_id))
    query = select(Membership.workspace_id, Membership.role).where(Membership.user_id == user_id)
    if wanted is not None:
        query = query.where(Membership.workspace_id == wanted)
    row = (await tx.session.execute(query.order_by(Membership.created_at).limit(1))).first()
    if row is None and wanted is not None:
        raise Forbidden(f"you are not a member of workspace {wanted}")
    return Seat(row.workspace_id, row.role) if row else None


async def log_in(
    tx: Transaction,
    *,
    email: str,
    password: str,
    workspace_id: uuid.UUID | None,
    tokens: AccessTokens,
    refresh_ttl: int,
) -> TokenPair:
    user = await find_user_by_email(tx, email)
    # Verified before anything else is decided, so an unknown email costs the same argon2 work
    # as a wrong password and response times do not tell which emails have accounts.
    matches = verify_password(user.password_hash if user is not None else None, password)
    if user is None or not matches:
        raise Unauthenticated("email or password is incorrect")
    if user.disabled_at is not None:
        raise Unauthenticated("this account is disabled")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    chosen = await _pick_workspace(tx, user_id=user.id, wanted=workspace_id)
    return await _issue(tx, tokens=tokens, refresh_ttl=refresh_ttl, user_id=user.id, seat=chosen)


async def refresh(
    tx: Transaction,
    *,
    refresh_token: str,
    workspace_id: uuid.UUID | None,
    tokens: AccessTokens,
    refresh_ttl: int,
) -> TokenPair:
    stored = await tx.session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == token_digest(refresh_token))
        .with_for_update()
    )
    if stored is None or stored.revoked_at is not None:
        raise Unauthenticated("refresh token is not valid; log in again")
    if stored.used_at is not None:
        # A spent token came back: someone holds a copy. End every session of this family.
        await tx.session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == stored.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
        raise Unauthenticated(
            "refresh token was already used; every session from this login has been revoked",
            keep_changes=True,
        )
    if stored.expires_at <= _now():
        raise Unauthenticated("refresh token has expired; log in again")
    user = await tx.session.get(User, stored.user_id)
    if user is None or user.disabled_at is not None:
        raise Unauthenticated("this account is disabled")
    stored.used_at = _now()
    if workspace_id is not None:
        chosen = await _pick_workspace(tx, user_id=stored.user_id, wanted=workspace_id)
    else:
        chosen = await _keep_or_pick(tx, stored)
    return await _issue(
        tx,
        tokens=tokens,
        refresh_ttl=refresh_ttl,
        user_id=stored.user_id,
        seat=chosen,
        family_id=stored.family_id,
    )


async def _keep_or_pick(tx: Transaction, stored: RefreshToken) -> Seat | None:
    """Stay in the workspace of the last token if still a member, else fall back to another."""
    if stored.workspace_hint is None:
        return await _pick_workspace(tx, user_id=stored.user_id, wanted=None)
    try:
        return await _pick_workspace(tx, user_id=stored.user_id, wanted=stored.workspace_hint)
    except Forbidden:
        return await _pick_workspace(tx, user_id=stored.user_id, wanted=None)


async def log_out(tx: Transaction, *, refresh_token: str) -> None:
    stored = await tx.session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_digest(refresh_token))
    )
    if stored is None:
        return
    await tx.session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == stored.family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def purge_expired_refresh_tokens(tx: Transaction) -> int:
    result = await tx.session.execute(
        delete(RefreshToken).where(RefreshToken.expires_at < _now() - timedelta(days=1))
    )
    return int(getattr(result, "rowcount", 0) or 0)
