from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status
from starlette.responses import Response

from pane.api.deps import Context, in_workspace, reads
from pane.api.schemas import LinkIn, LinkOut, LinkUpdate, PageOf, json_response
from pane.api.vendors import Cursor, Limit
from pane.principal import Permission, Principal, WorkspacePrincipal
from pane.services import links
from pane.services.links import LinkStatus
from pane.services.pagination import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/links", tags=["links"])

LinkReader = Annotated[Context[Principal], reads(Permission.LINKS_READ)]
LinkWriter = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.LINKS_WRITE)]


@router.post("", response_model=LinkOut, status_code=status.HTTP_201_CREATED)
async def create_link(body: LinkIn, context: LinkWriter) -> Response:
    """Link a vendor to the workspace through a connector. Credentials are encrypted at rest and
    never returned; `has_credentials` says whether some are stored."""
    link = await links.create_link(
        context.session,
        actor=context.principal,
        keyring=context.runtime.keyring,
        vendor_id=body.vendor_id,
        connector=body.connector,
        config=body.config,
        credentials=body.credentials,
    )
    return json_response(links.link_json(link), status_code=status.HTTP_201_CREATED)


@router.get("", response_model=PageOf[LinkOut])
async def list_links(
    context: LinkReader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Response:
    """The workspace's vendor links; for a vendor key, the workspaces that link this vendor."""
    page = await links.list_links(
        context.session, principal=context.principal, cursor=cursor, limit=limit
    )
    return Response(page.to_json(), media_type="application/json")


@router.get("/{link_id}", response_model=LinkOut)
async def get_link(link_id: uuid.UUID, context: LinkReader) -> Response:
    link = await links.get_link(context.session, principal=context.principal, link_id=link_id)
    return json_response(links.link_json(link))


@router.patch("/{link_id}", response_model=LinkOut)
async def update_link(link_id: uuid.UUID, body: LinkUpdate, context: LinkWriter) -> Response:
    """Replace the link's config and/or credentials. New credentials end `needs_reauth`."""
    link = await links.update_link(
        context.session,
        actor=context.principal,
        keyring=context.runtime.keyring,
        link_id=link_id,
        config=body.config,
        credentials=body.credentials,
    )
    return json_response(links.link_json(link))


@router.post("/{link_id}/pause", response_model=LinkOut)
async def pause_link(link_id: uuid.UUID, context: LinkWriter) -> Response:
    """Stop syncing this vendor; the vendor's key stops seeing this workspace's rows."""
    link = await links.set_link_status(
        context.session, actor=context.principal, link_id=link_id, status=LinkStatus.PAUSED
    )
    return json_response(links.link_json(link))


@router.post("/{link_id}/resume", response_model=LinkOut)
async def resume_link(link_id: uuid.UUID, context: LinkWriter) -> Response:
    link = await links.set_link_status(
        context.session, actor=context.principal, link_id=link_id, status=LinkStatus.ACTIVE
    )
    return json_response(links.link_json(link))


@router.delete("/{link_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_link(link_id: uuid.UUID, context: LinkWriter) -> Response:
    """Unlink the vendor. Leads already received stay in the workspace."""
    await links.delete_link(context.session, actor=context.principal, link_id=link_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
