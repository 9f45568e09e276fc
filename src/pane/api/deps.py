"""Request-scoped dependencies, named once with ``Annotated``.

Tenant scoping happens here and nowhere else: ``authenticated`` checks the caller's
credentials, opens the request's one transaction scoped to that principal and checks the
permission the route needs, for routes on the ORM and routes that go straight from SQL to JSON
alike. Dependencies use ``scope="function"`` so the commit happens before the response is sent,
and a failed commit becomes an error response rather than a lie.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any, Generic, TypeVar

import asyncpg
from fastapi import Depends, Request
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession

from pane.db.database import (
    NotAMember,
    RoleNotAllowed,
    Scope,
    Transaction,
    member_scope,
    pushed_to_scope,
    user_scope,
    vendor_scope,
    workspace_scope,
)
from pane.errors import Forbidden, Unauthenticated
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

P = TypeVar("P", bound=AnyPrincipal)


@dataclass(frozen=True, slots=True)
class Context(Generic[P]):
    """The request's transaction and the principal it is scoped to."""

    tx: Transaction
    principal: P
    runtime: Runtime
    # When the credentials stop working by themselves (an access token's expiry, as a Unix
    # time); None for API keys, which work until revoked.
    expires_at: float | None = None

    @property
    def session(self) -> AsyncSession:
        return self.tx.session

    @property
    def connection(self) -> asyncpg.Connection:
        return self.tx.connection


def _check(principal: AnyPrincipal, permission: Permission, *, workspace_only: bool) -> None:
    """What the database has not checked already (it checks a member's current role)."""
    if workspace_only and isinstance(principal, VendorPrincipal):
        raise Forbidden("vendor keys cannot do this; it belongs to the reseller's workspace")
    if isinstance(principal, AccountPrincipal):
        raise Forbidden(_NO_WORKSPACE)
    if isinstance(principal, ApiKeyPrincipal | VendorPrincipal) and (
        permission not in principal.permissions
    ):
        raise Forbidden(f"this action needs the {permission.value} permission")


class authenticated:
    """The one way a request is authenticated and scoped, for ``async with``. A member's token
    opens the transaction and has the database check membership and current role in the same
    round trip; an API key is looked up inside the transaction, which it then scopes."""

    __slots__ = (
        "_kept_plans",
        "_opened",
        "_orm",
        "_permission",
        "_runtime",
        "_token",
        "_workspace_only",
    )

    def __init__(
        self,
        runtime: Runtime,
        token: str | None,
        permission: Permission | None,
        *,
        workspace_only: bool = False,
        orm: bool = True,
        kept_plans: bool = False,
    ) -> None:
        self._runtime = runtime
        self._token = token
        self._permission = permission
        self._workspace_only = workspace_only
        self._orm = orm
        self._kept_plans = kept_plans
        self._opened: Any = None

    async def __aenter__(self) -> Context[Any]:
        token, permission, database = self._token, self._permission, self._runtime.database
        if not token:
            raise Unauthenticated(_MISSING_CREDENTIALS)
        principal: AnyPrincipal
        if token.startswith(API_KEY_PREFIX):
            self._opened = database.transaction(orm=self._orm, kept_plans=self._kept_plans)
            tx = await self._opened.__aenter__()
            try:
                key_principal = await authenticate_key(tx, key=token)
                if key_principal is None:
                    raise Unauthenticated(
                        "API key is not valid, or has been revoked or has expired"
                    )
                principal = key_principal
                if permission is not None:
                    _check(principal, permission, workspace_only=self._workspace_only)
            except BaseException as exc:
                await self._opened.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            return Context(tx=tx, principal=principal, runtime=self._runtime)
        claims = self._runtime.tokens.verify(token)
        roles = ROLES_WITH[permission] if permission is not None else ALL_ROLES
        try:
            if claims.workspace_id is None:
                raise NotAMember
            self._opened = database.transaction(
                member_scope(claims.workspace_id, claims.user_id, roles),
                orm=self._orm,
                kept_plans=self._kept_plans,
            )
            tx = await self._opened.__aenter__()
            principal = UserPrincipal(user_id=claims.user_id, workspace_id=claims.workspace_id)
        except NotAMember:
            if permission is not None:
                raise Forbidden(_NO_WORKSPACE) from None
            self._opened = database.transaction(
                user_scope(claims.user_id), orm=self._orm, kept_plans=self._kept_plans
            )
            tx = await self._opened.__aenter__()
            principal = AccountPrincipal(user_id=claims.user_id)
        except RoleNotAllowed:
            assert permission is not None
            raise Forbidden(f"this action needs the {permission.value} permission") from None
        return Context(
            tx=tx, principal=principal, runtime=self._runtime, expires_at=claims.expires_at
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._opened.__aexit__(exc_type, exc, traceback)


ALL_ROLES = tuple(Role)


def scope_of(principal: Principal, permission: Permission = Permission.CHANGES_READ) -> Scope:
    """A later transaction on behalf of an authenticated principal (a live stream reading on):
    a member is checked again by the database each time."""
    if isinstance(principal, UserPrincipal):
        return member_scope(principal.workspace_id, principal.user_id, ROLES_WITH[permission])
    if isinstance(principal, VendorPrincipal):
        return vendor_scope(principal.vendor_id)
    return workspace_scope(principal.workspace_id)


class _Scoped(SecurityBase):
    """The dependency every authenticated route takes: reads the bearer credentials and holds
    the request's transaction open around the route (``authenticated``). One dependency that
    is also the document's security scheme, rather than a scheme nested under a context:
    FastAPI's per-dependency bookkeeping is a real share of a request's CPU."""

    def __init__(
        self,
        permission: Permission | None,
        *,
        workspace_only: bool,
        orm: bool,
        kept_plans: bool = False,
    ) -> None:
        self.model = HTTPBearerModel(
            description="An access token from /v1/auth/login, or an API key (`pane_...`)."
        )
        self.scheme_name = "HTTPBearer"
        self._permission = permission
        self._workspace_only = workspace_only
        self._orm = orm
        self._kept_plans = kept_plans

    async def __call__(self, request: Request) -> AsyncIterator[Context[Any]]:
        async with authenticated(
            request.app.state.runtime,
            _bearer_token(request.headers.get("authorization")),
            self._permission,
            workspace_only=self._workspace_only,
            orm=self._orm,
            kept_plans=self._kept_plans,
        ) as opened:
            yield opened


def _bearer_token(authorization: str | None) -> str | None:
    """The credentials of an ``Authorization: Bearer <credentials>`` header, as FastAPI's
    ``HTTPBearer`` reads them."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    return credentials if credentials and scheme.lower() == "bearer" else None


class _Unauthenticated:
    """A transaction with no principal yet: the services scope it as they go."""

    def __init__(self, *, orm: bool) -> None:
        self._orm = orm

    async def __call__(self, request: Request) -> AsyncIterator[Transaction]:
        async with request.app.state.runtime.database.transaction(orm=self._orm) as tx:
            yield tx


# Sign-up, login and refresh.
AnonymousTx = Annotated[Transaction, Depends(_Unauthenticated(orm=True), scope="function")]


async def _pushed_to(link_id: uuid.UUID, request: Request) -> AsyncIterator[Transaction]:
    """A vendor's webhook, whose signature is its authentication (checked by the service with
    the link's secret): a transaction scoped to the link's workspace from its first round
    trip, plain SQL."""
    async with request.app.state.runtime.database.transaction(pushed_to_scope(link_id)) as tx:
        yield tx


PushedTx = Annotated[Transaction, Depends(_pushed_to, scope="function")]

AnyContext = Annotated[
    Context[AnyPrincipal],
    Depends(_Scoped(None, workspace_only=False, orm=True), scope="function"),
]


def reads(permission: Permission) -> Any:
    """A context for reading, open to vendor principals where the permission allows."""
    return Depends(_Scoped(permission, workspace_only=False, orm=True), scope="function")


def reads_rows(permission: Permission) -> Any:
    """Like ``reads``, without the ORM and on kept plans (``Database.transaction``): for lists
    that go from SQL rows straight to JSON."""
    return Depends(
        _Scoped(permission, workspace_only=False, orm=False, kept_plans=True), scope="function"
    )


def in_workspace(permission: Permission) -> Any:
    """A context acting in the caller's own workspace; never open to vendor principals."""
    return Depends(_Scoped(permission, workspace_only=True, orm=True), scope="function")


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
        raise Unauthenticated("this account no longer exists or is disabled")
    return user


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
