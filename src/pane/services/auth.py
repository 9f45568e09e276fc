"""Sign-up, login, refresh-token rotation with reuse detection, logout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pane.db.tenant import enter_user, enter_workspace
from pane.errors import Conflict, Forbidden, Unauthorized
from pane.ids import new_id
from pane.models import Membership, RefreshToken, User, Workspace
from pane.principal import Role
from pane.services.audit import record_audit
from pane.services.events import record_event
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
    session: AsyncSession,
    *,
    tokens: AccessTokens,
    refresh_ttl: int,
    user_id: uuid.UUID,
    seat: Seat | None,
    family_id: uuid.UUID | None = None,
) -> TokenPair:
    workspace_id = seat.workspace_id if seat else None
    refresh = new_opaque_token(REFRESH_PREFIX)
    session.add(
        RefreshToken(
            id=new_id(),
            family_id=family_id or new_id(),
            user_id=user_id,
            token_hash=token_digest(refresh),
            workspace_hint=workspace_id,
            expires_at=_now() + timedelta(seconds=refresh_ttl),
        )
    )
    await session.flush()
    return TokenPair(
        access_token=tokens.issue(
            user_id=user_id, workspace_id=workspace_id, role=seat.role if seat else None
        ),
        refresh_token=refresh,
        expires_in=tokens.ttl_seconds,
        workspace_id=workspace_id,
    )


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.email) == email.lower()))


async def create_user(session: AsyncSession, *, email: str, password: str, name: str) -> User:
    if await find_user_by_email(session, email) is not None:
        raise Conflict(f"an account with email {email} already exists")
    user = User(id=new_id(), email=email, name=name, password_hash=hash_password(password))
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"an account with email {email} already exists") from exc
    return user


async def create_workspace(session: AsyncSession, *, name: str, owner_id: uuid.UUID) -> Workspace:
    workspace = Workspace(id=new_id(), name=name)
    await enter_workspace(session, workspace_id=workspace.id)
    session.add(workspace)
    await session.flush()
    session.add(Membership(workspace_id=workspace.id, user_id=owner_id, role=Role.OWNER.value))
    await session.flush()
    actor = ("user", owner_id)
    await record_event(
        session,
        workspace_id=workspace.id,
        actor=actor,
        entity="workspace",
        entity_id=workspace.id,
        action="created",
        data={"name": name},
    )
    await record_audit(
        session,
        workspace_id=workspace.id,
        actor=actor,
        action="workspace.created",
        target_type="workspace",
        target_id=workspace.id,
    )
    return workspace


async def sign_up(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    name: str,
    workspace_name: str,
    tokens: AccessTokens,
    refresh_ttl: int,
) -> tuple[User, Workspace, TokenPair]:
    user = await create_user(session, email=email, password=password, name=name)
    workspace = await create_workspace(session, name=workspace_name, owner_id=user.id)
    pair = await _issue(
        session,
        tokens=tokens,
        refresh_ttl=refresh_ttl,
        user_id=user.id,
        seat=Seat(workspace.id, Role.OWNER.value),
    )
    return user, workspace, pair


async def _pick_workspace(
    session: AsyncSession, *, user_id: uuid.UUID, wanted: uuid.UUID | None
) -> Seat | None:
    await enter_user(session, user_id=user_id)
    query = select(Membership.workspace_id, Membership.role).where(Membership.user_id == user_id)
    if wanted is not None:
        query = query.where(Membership.workspace_id == wanted)
    row = (await session.execute(query.order_by(Membership.created_at).limit(1))).first()
    if row is None and wanted is not None:
        raise Forbidden(f"you are not a member of workspace {wanted}")
    return Seat(row.workspace_id, row.role) if row else None


async def log_in(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    workspace_id: uuid.UUID | None,
    tokens: AccessTokens,
    refresh_ttl: int,
) -> TokenPair:
    user = await find_user_by_email(session, email)
    # Verified before anything else is decided, so an unknown email costs the same argon2 work
    # as a wrong password and response times do not tell which emails have accounts.
    matches = verify_password(user.password_hash if user is not None else None, password)
    if user is None or not matches:
        raise Unauthorized("email or password is incorrect")
    if user.disabled_at is not None:
        raise Unauthorized("this account is disabled")
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    chosen = await _pick_workspace(session, user_id=user.id, wanted=workspace_id)
    return await _issue(
        session, tokens=tokens, refresh_ttl=refresh_ttl, user_id=user.id, seat=chosen
    )


async def refresh(
    session: AsyncSession,
    *,
    refresh_token: str,
    workspace_id: uuid.UUID | None,
    tokens: AccessTokens,
    refresh_ttl: int,
) -> TokenPair:
    stored = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == token_digest(refresh_token))
        .with_for_update()
    )
    if stored is None or stored.revoked_at is not None:
        raise Unauthorized("refresh token is not valid; log in again")
    if stored.used_at is not None:
        # A spent token came back: someone holds a copy. End every session of this family.
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == stored.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=_now())
        )
        raise Unauthorized(
            "refresh token was already used; every session from this login has been revoked",
            keep_changes=True,
        )
    if stored.expires_at <= _now():
        raise Unauthorized("refresh token has expired; log in again")
    user = await session.get(User, stored.user_id)
    if user is None or user.disabled_at is not None:
        raise Unauthorized("this account is disabled")
    stored.used_at = _now()
    if workspace_id is not None:
        chosen = await _pick_workspace(session, user_id=stored.user_id, wanted=workspace_id)
    else:
        chosen = await _keep_or_pick(session, stored)
    return await _issue(
        session,
        tokens=tokens,
        refresh_ttl=refresh_ttl,
        user_id=stored.user_id,
        seat=chosen,
        family_id=stored.family_id,
    )


async def _keep_or_pick(session: AsyncSession, stored: RefreshToken) -> Seat | None:
    """Stay in the workspace of the last token if still a member, else fall back to another."""
    if stored.workspace_hint is None:
        return await _pick_workspace(session, user_id=stored.user_id, wanted=None)
    try:
        return await _pick_workspace(session, user_id=stored.user_id, wanted=stored.workspace_hint)
    except Forbidden:
        return await _pick_workspace(session, user_id=stored.user_id, wanted=None)


async def log_out(session: AsyncSession, *, refresh_token: str) -> None:
    stored = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_digest(refresh_token))
    )
    if stored is None:
        return
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == stored.family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def purge_expired_refresh_tokens(session: AsyncSession) -> int:
    result = await session.execute(
        delete(RefreshToken).where(RefreshToken.expires_at < _now() - timedelta(days=1))
    )
    return int(getattr(result, "rowcount", 0) or 0)
