"""Request-scoped dependencies, named once with ``Annotated``.

Tenant scoping happens here and nowhere else: the dependency that authenticates the caller
opens the request's one transaction and sets the principal in it before any route runs.
Dependencies use ``scope="function"`` so the commit happens before the response is sent, and a
failed commit becomes an error response rather than a lie.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

import asyncpg
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pane.db.tenant import (
    Bind,
    NotAMember,
    RoleNotAllowed,
    begin_reading,
    end_reading,
    enter_user,
    enter_workspace_as_user,
)
from pane.db.unit import Transaction, transaction
from pane.errors import Forbidden, Unauthorized
from pane.models import User
from pane.principal import (
    ROLES_WITH,
    AccountPrincipal,
    AnyPrincipal,
    ApiKeyPrincipal,
    Permission,
    Principal,
    Role,
    UserPrincipal,
    VendorPrincipal,
)
from pane.runtime import Runtime
from pane.services.api_keys import authenticate_key
from pane.services.security import API_KEY_PREFIX

_bearer = HTTPBearer(
    auto_error=False,
    description="An access token from /v1/auth/login, or an API key (`pane_...`).",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]

_MISSING_CREDENTIALS = "send an access token or API key as `Authorization: Bearer ...`"
_NO_WORKSPACE = (
    "no workspace selected: you are not a member of the workspace in your token; "
    "log in again or refresh with a workspace_id"
)


async def get_runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs plain-def dependencies in a thread pool
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def _session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with transaction(runtime.engine) as unit:
        yield unit.session


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]


async def _key_principal(connection: Bind, token: str) -> ApiKeyPrincipal | VendorPrincipal:
    principal = await authenticate_key(connection, key=token)
    if principal is None:
        raise Unauthorized("API key is not valid, or has been revoked or has expired")
    return principal


async def _authenticate(connection: Bind, runtime: Runtime, token: str | None) -> AnyPrincipal:
    if not token:
        raise Unauthorized(_MISSING_CREDENTIALS)
    if token.startswith(API_KEY_PREFIX):
        return await _key_principal(connection, token)
    claims = runtime.tokens.verify(token)
    if claims.workspace_id is None:
        await enter_user(connection, user_id=claims.user_id)
        return AccountPrincipal(user_id=claims.user_id)
    role = await enter_workspace_as_user(
        connection, workspace_id=claims.workspace_id, user_id=claims.user_id
    )
    if role is None:
        await enter_user(connection, user_id=claims.user_id)
        return AccountPrincipal(user_id=claims.user_id)
    return UserPrincipal(user_id=claims.user_id, workspace_id=claims.workspace_id, role=role)


P = TypeVar("P", bound=AnyPrincipal)


@dataclass(frozen=True, slots=True)
class Context(Generic[P]):
    """The request's transaction and the principal it is scoped to."""

    unit: Transaction
    principal: P
    runtime: Runtime

    @property
    def session(self) -> AsyncSession:
        return self.unit.session

    @property
    def connection(self) -> AsyncConnection:
        return self.unit.connection


def _context(
    permission: Permission | None, *, workspace_only: bool
) -> Callable[..., AsyncIterator[Context[Any]]]:
    """One flat dependency per permission: FastAPI's per-dependency bookkeeping is a real
    share of a request's CPU, so authentication, scoping and the check happen in one place."""

    async def context(
        request: Request,
        credentials: BearerDep,
    ) -> AsyncIterator[Context[Any]]:
        runtime = request.app.state.runtime
        async with transaction(runtime.engine) as unit:
            principal = await _authenticate(
                unit.connection, runtime, credentials.credentials if credentials else None
            )
            if permission is not None:
                _check(principal, permission, workspace_only=workspace_only)
            yield Context(unit=unit, principal=principal, runtime=runtime)

    return context


def _check(principal: AnyPrincipal, permission: Permission, *, workspace_only: bool) -> None:
    if workspace_only and isinstance(principal, VendorPrincipal):
        raise Forbidden("vendor keys cannot do this; it belongs to the reseller's workspace")
    if isinstance(principal, AccountPrincipal):
        raise Forbidden(_NO_WORKSPACE)
    if permission not in principal.permissions:
        raise Forbidden(f"this action needs the {permission.value} permission")


@dataclass(frozen=True, slots=True)
class RowsContext(Generic[P]):
    """A read-only request on asyncpg directly, for lists that go from SQL rows to JSON.

    Three round trips in all: scope and check, the query, end and reset. For a user, the
    database checks membership and that the current role grants the permission; the
    principal's ``role`` is the one in the token (not used to decide anything here)."""

    connection: asyncpg.Connection
    principal: P
    runtime: Runtime


async def _begin_reading(
    connection: asyncpg.Connection, runtime: Runtime, token: str | None, permission: Permission
) -> tuple[Principal, bool]:
    """Authenticate and scope a read transaction; say whether it must commit (an API key's
    last_used_at) or may simply be rolled back."""
    if not token:
        raise Unauthorized(_MISSING_CREDENTIALS)
    if token.startswith(API_KEY_PREFIX):
        await connection.execute("BEGIN")
        key_principal = await _key_principal(connection, token)
        _check(key_principal, permission, workspace_only=False)
        return key_principal, True
    claims = runtime.tokens.verify(token)
    if claims.workspace_id is None or claims.role is None:
        raise Forbidden(_NO_WORKSPACE)
    try:
        await begin_reading(
            connection,
            workspace_id=claims.workspace_id,
            user_id=claims.user_id,
            roles=ROLES_WITH[permission],
        )
    except NotAMember as exc:
        raise Forbidden(_NO_WORKSPACE) from exc
    except RoleNotAllowed as exc:
        raise Forbidden(f"this action needs the {permission.value} permission") from exc
    principal = UserPrincipal(
        user_id=claims.user_id, workspace_id=claims.workspace_id, role=Role(claims.role)
    )
    return principal, False


def _rows_context(permission: Permission) -> Callable[..., AsyncIterator[RowsContext[Any]]]:
    async def context(
        request: Request,
        credentials: BearerDep,
    ) -> AsyncIterator[RowsContext[Any]]:
        runtime = request.app.state.runtime
        async with runtime.pool.acquire() as connection:
            must_commit = False
            try:
                principal, must_commit = await _begin_reading(
                    connection,
                    runtime,
                    credentials.credentials if credentials else None,
                    permission,
                )
                yield RowsContext(connection=connection, principal=principal, runtime=runtime)
            finally:
                await end_reading(connection, commit=must_commit)

    return context


def reads_rows(permission: Permission) -> Any:
    """Like ``reads``, on a bare asyncpg connection: for hot list endpoints."""
    return Depends(_rows_context(permission), scope="function")


AnyContext = Annotated[
    Context[AnyPrincipal], Depends(_context(None, workspace_only=False), scope="function")
]


def reads(permission: Permission) -> Any:
    """A context for reading, open to vendor principals where the permission allows."""
    return Depends(_context(permission, workspace_only=False), scope="function")


def in_workspace(permission: Permission) -> Any:
    """A context acting in the caller's own workspace; never open to vendor principals."""
    return Depends(_context(permission, workspace_only=True), scope="function")


async def _user_context(context: AnyContext) -> Context[AnyPrincipal]:
    if not isinstance(context.principal, UserPrincipal | AccountPrincipal):
        raise Forbidden("this needs a signed-in user, not an API key")
    return context


UserContext = Annotated[Context[AnyPrincipal], Depends(_user_context)]


async def current_user(context: Context[AnyPrincipal]) -> User:
    principal = context.principal
    assert isinstance(principal, UserPrincipal | AccountPrincipal)
    user = await context.session.get(User, principal.user_id)
    if user is None or user.disabled_at is not None:
        raise Unauthorized("this account no longer exists or is disabled")
    return user


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
