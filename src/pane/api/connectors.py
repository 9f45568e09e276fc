from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from pane.api.deps import AnyContext
from pane.api.problems import AUTHENTICATED, problems
from pane.api.schemas import PageOf
from pane.connectors.registry import connectors
from pane.services.lists import Page

router = APIRouter(prefix="/v1/connectors", tags=["connectors"], responses=problems(*AUTHENTICATED))


class ConnectorOut(BaseModel):
    name: str
    title: str
    description: str
    streams: list[str]
    actions: list[str]
    webhooks: bool
    config_schema: dict[str, Any] = Field(description="JSON Schema of the link's `config`.")
    credentials_schema: dict[str, Any] = Field(
        description="JSON Schema of the link's `credentials` (secrets are `format: password`)."
    )


@router.get("", response_model=PageOf[ConnectorOut])
async def list_connectors(context: AnyContext) -> Response:
    """Every installed connector, with the JSON Schemas a SPA needs to render the link form."""
    items = [connector.describe() for connector in connectors().values()]
    return Response(Page(items=items, next_cursor=None).to_json(), media_type="application/json")
