from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.responses import Response

from pane.api.deps import AnyContext
from pane.api.schemas import json_response
from pane.connectors.registry import connectors

router = APIRouter(prefix="/v1/connectors", tags=["connectors"])


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


class ConnectorPage(BaseModel):
    items: list[ConnectorOut]
    next_cursor: str | None


@router.get("", response_model=ConnectorPage)
async def list_connectors(context: AnyContext) -> Response:
    """Every installed connector, with the JSON Schemas a SPA needs to render the link form."""
    items = [connector.describe() for connector in connectors().values()]
    return json_response({"items": items, "next_cursor": None})
