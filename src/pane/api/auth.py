from __future__ import annotations

from fastapi import APIRouter, Request, status
from starlette.responses import Response

from pane.api.deps import AnonymousTx, RuntimeDep, client_ip
from pane.api.problems import BODY, problems
from pane.api.schemas import (
    LogIn,
    LogOut,
    RefreshRequest,
    SignedUp,
    SignUp,
    Tokens,
    UserOut,
    WorkspaceOut,
)
from pane.principal import Role
from pane.services import auth

router = APIRouter(prefix="/v1/auth", tags=["auth"], responses=problems(*BODY, 422, 503))


@router.post("/signup", status_code=status.HTTP_201_CREATED, responses=problems(409))
async def sign_up(body: SignUp, tx: AnonymousTx, runtime: RuntimeDep) -> SignedUp:
    """Create an account and its first workspace (you become its owner), and sign in."""
    user, workspace, pair = await auth.sign_up(
        tx,
        email=str(body.email),
        password=body.password,
        name=body.name,
        workspace_name=body.workspace_name,
        tokens=runtime.tokens,
        refresh_ttl=runtime.settings.refresh_token_ttl_seconds,
    )
    return SignedUp(
        user=UserOut.model_validate(user, from_attributes=True),
        workspace=WorkspaceOut.of(workspace, Role.OWNER),
        tokens=Tokens.model_validate(pair, from_attributes=True),
    )


@router.post("/login", responses=problems(401, 403, 429))
async def log_in(body: LogIn, request: Request, tx: AnonymousTx, runtime: RuntimeDep) -> Tokens:
    """Exchange email and password for a short-lived access token and a rotating refresh token.

    Without `workspace_id` the token is for the workspace you joined first. Attempts are
    limited per account and per client address (429 with `Retry-After`).
    """
    await runtime.login_limiter.check(email=str(body.email), ip=client_ip(request))
    pair = await auth.log_in(
        tx,
        email=str(body.email),
        password=body.password,
        workspace_id=body.workspace_id,
        tokens=runtime.tokens,
        refresh_ttl=runtime.settings.refresh_token_ttl_seconds,
    )
    return Tokens.model_validate(pair, from_attributes=True)


@router.post("/refresh", responses=problems(401, 403))
async def refresh(body: RefreshRequest, tx: AnonymousTx, runtime: RuntimeDep) -> Tokens:
    """Trade a refresh token for a new pair. Each refresh token works once: presenting a spent
    one revokes every token descended from the same login."""
    pair = await auth.refresh(
        tx,
        refresh_token=body.refresh_token,
        workspace_id=body.workspace_id,
        tokens=runtime.tokens,
        refresh_ttl=runtime.settings.refresh_token_ttl_seconds,
    )
    return Tokens.model_validate(pair, from_attributes=True)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def log_out(body: LogOut, tx: AnonymousTx) -> Response:
    """Revoke the refresh token and every token of the same login. Access tokens already issued
    stay valid until they expire (minutes)."""
    await auth.log_out(tx, refresh_token=body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
