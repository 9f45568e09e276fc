from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status
from starlette.responses import Response

from pane.api.deps import Context, in_workspace, reads
from pane.api.problems import AUTHENTICATED, BODY, problems
from pane.api.schemas import (
    LinkIn,
    LinkOut,
    LinkUpdate,
    PageOf,
    SyncRequest,
    SyncRunOut,
)
from pane.api.vendors import Cursor, Limit
from pane.principal import Permission, Principal, WorkspacePrincipal
from pane.services import links, sync
from pane.services.links import LinkStatus
from pane.services.lists import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/links", tags=["links"], responses=problems(*AUTHENTICATED))

LinkReader = Annotated[Context[Principal], reads(Permission.LINKS_READ)]
LinkWriter = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.LINKS_WRITE)]
RunReader = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.LINKS_READ)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(*BODY, 409))
async def create_link(body: LinkIn, context: LinkWriter) -> LinkOut:
    """Link a vendor to the workspace through a connector. The connector first checks the config
    and credentials with the vendor: a refusal is a 422 carrying the vendor's reason. Credentials
    are encrypted at rest and never returned; `has_credentials` says whether some are stored.
    The first sync starts within a minute."""
    link = await links.create_link(
        context.tx,
        actor=context.principal,
        keyring=context.runtime.keyring,
        vendor_id=body.vendor_id,
        connector=body.connector,
        config=body.config,
        credentials=body.credentials,
        check=context.runtime.link_check,
        sync_interval_seconds=body.sync_interval_seconds,
        full_resync_interval_seconds=body.full_resync_interval_seconds,
    )
    return LinkOut.model_validate(link, from_attributes=True)


@router.get("", response_model=PageOf[LinkOut], responses=problems(400))
async def list_links(
    context: LinkReader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Response:
    """The workspace's vendor links; for a vendor key, the workspaces that link this vendor."""
    page = await links.list_links(
        context.tx, principal=context.principal, cursor=cursor, limit=limit
    )
    return Response(page.to_json(), media_type="application/json")


@router.get("/{link_id}", responses=problems(404))
async def get_link(link_id: uuid.UUID, context: LinkReader) -> LinkOut:
    link = await links.get_link(context.tx, principal=context.principal, link_id=link_id)
    return LinkOut.model_validate(link, from_attributes=True)


@router.patch("/{link_id}", responses=problems(*BODY, 404))
async def update_link(link_id: uuid.UUID, body: LinkUpdate, context: LinkWriter) -> LinkOut:
    """Replace the link's config and/or credentials (checked with the vendor first, 422 if it
    refuses them), or its sync schedule. New credentials that work end `needs_reauth`."""
    link = await links.update_link(
        context.tx,
        actor=context.principal,
        keyring=context.runtime.keyring,
        link_id=link_id,
        config=body.config,
        credentials=body.credentials,
        check=context.runtime.link_check,
        sync_interval_seconds=body.sync_interval_seconds,
        full_resync_interval_seconds=body.full_resync_interval_seconds,
    )
    return LinkOut.model_validate(link, from_attributes=True)


@router.post("/{link_id}/pause", responses=problems(404, 409))
async def pause_link(link_id: uuid.UUID, context: LinkWriter) -> LinkOut:
    """Stop syncing this vendor; the vendor's key stops seeing this workspace's rows."""
    link = await links.set_link_status(
        context.tx, actor=context.principal, link_id=link_id, status=LinkStatus.PAUSED
    )
    return LinkOut.model_validate(link, from_attributes=True)


@router.post("/{link_id}/resume", responses=problems(404, 409))
async def resume_link(link_id: uuid.UUID, context: LinkWriter) -> LinkOut:
    link = await links.set_link_status(
        context.tx, actor=context.principal, link_id=link_id, status=LinkStatus.ACTIVE
    )
    return LinkOut.model_validate(link, from_attributes=True)


@router.delete("/{link_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404))
async def delete_link(link_id: uuid.UUID, context: LinkWriter) -> Response:
    """Unlink the vendor. Leads already received stay in the workspace."""
    await links.delete_link(context.tx, actor=context.principal, link_id=link_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{link_id}/sync", status_code=status.HTTP_202_ACCEPTED, responses=problems(*BODY, 404, 409)
)
async def start_sync(
    link_id: uuid.UUID, context: LinkWriter, body: SyncRequest | None = None
) -> SyncRunOut:
    """Sync the link now. Answers 202 with the queued run; poll
    `GET /v1/links/{id}/runs/{run_id}` to follow it. Asking again while that run still waits
    gives the same run. A link syncs one run at a time: a run asked for during another starts
    when it ends. 409 when the link is paused or needs new credentials."""
    request = body or SyncRequest()
    run = await sync.request_sync(
        context.tx,
        actor=context.principal,
        link_id=link_id,
        streams=request.streams,
        full_resync=request.full_resync,
    )
    return SyncRunOut.model_validate(run)


@router.get("/{link_id}/runs", response_model=PageOf[SyncRunOut], responses=problems(400, 404))
async def list_runs(
    link_id: uuid.UUID, context: RunReader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Response:
    """The link's sync runs, newest first: trigger, status, counts (fetched, created, updated,
    unchanged, deleted, failed), the records that failed with their payload, and the error."""
    page = await sync.list_runs(
        context.tx, actor=context.principal, link_id=link_id, cursor=cursor, limit=limit
    )
    return Response(page.to_json(), media_type="application/json")


@router.get("/{link_id}/runs/{run_id}", responses=problems(404))
async def get_run(link_id: uuid.UUID, run_id: uuid.UUID, context: RunReader) -> SyncRunOut:
    run = await sync.get_run(context.tx, actor=context.principal, link_id=link_id, run_id=run_id)
    return SyncRunOut.model_validate(run)
