from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status
from starlette.responses import Response

from pane.api.deps import Context, in_workspace
from pane.api.problems import AUTHENTICATED, BODY, problems
from pane.api.schemas import ApiKeyIn, ApiKeyIssued, ApiKeyOut, PageOf
from pane.api.vendors import Cursor, Limit
from pane.models import ApiKey
from pane.principal import Permission, WorkspacePrincipal
from pane.services import api_keys
from pane.services.lists import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/api-keys", tags=["api keys"], responses=problems(*AUTHENTICATED))

KeyManager = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.KEYS_MANAGE)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(*BODY))
async def create_key(body: ApiKeyIn, context: KeyManager) -> ApiKeyIssued:
    """Issue a workspace API key for a CRM or script. The key is in this response only."""
    issued = await api_keys.create_workspace_key(
        context.tx,
        actor=context.principal,
        name=body.name,
        scopes=body.scopes,
        expires_at=body.expires_at,
    )
    assert isinstance(issued.record, ApiKey)
    shown = ApiKeyOut.model_validate(issued.record, from_attributes=True)
    return ApiKeyIssued(**dict(shown), key=issued.key)


@router.get("", response_model=PageOf[ApiKeyOut], responses=problems(400))
async def list_keys(
    context: KeyManager, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Response:
    """Every key of the workspace, oldest first, revoked ones included; secrets are never
    shown again."""
    page = await api_keys.list_workspace_keys(
        context.tx, workspace_id=context.principal.workspace_id, cursor=cursor, limit=limit
    )
    return Response(page.to_json(), media_type="application/json")


@router.delete("/{key_id}", responses=problems(404))
async def revoke_key(key_id: uuid.UUID, context: KeyManager) -> ApiKeyOut:
    """Revoke a key; requests using it fail with 401 from now on."""
    record = await api_keys.revoke_workspace_key(context.tx, actor=context.principal, key_id=key_id)
    return ApiKeyOut.model_validate(record, from_attributes=True)
