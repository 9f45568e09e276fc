from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status
from starlette.responses import Response

from pane.api.deps import Context, in_workspace, reads
from pane.api.problems import AUTHENTICATED, BODY, problems
from pane.api.schemas import (
    DisclosureIn,
    LinkCreated,
    LinkIn,
    LinkOut,
    LinkUpdate,
    PageOf,
    SyncRequest,
    SyncRunOut,
    WebhookDeliveryOut,
    WebhookSecretOut,
    WebhookSecretRequest,
)
from pane.api.vendors import Cursor, Limit
from pane.models.vendor import LinkStatus
from pane.principal import Permission, Principal, WorkspacePrincipal
from pane.services import links, sync, webhooks
from pane.services.lists import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/links", tags=["links"], responses=problems(*AUTHENTICATED))

LinkReader = Annotated[Context[Principal], reads(Permission.LINKS_READ)]
LinkWriter = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.LINKS_WRITE)]
RunReader = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.LINKS_READ)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(*BODY, 409))
async def create_link(body: LinkIn, context: LinkWriter) -> LinkCreated:
    """Link a vendor to the workspace through a connector. The connector first checks the config
    and credentials with the vendor: a refusal is a 422 carrying the vendor's reason. Credentials
    are encrypted at rest and never returned; `has_credentials` says whether some are stored.
    The first sync starts within a minute. A link whose vendor pushes webhooks comes with its
    signing secret, shown this once (`webhook_secret`)."""
    created = await links.create_link(
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
    shown = LinkOut.model_validate(created.link, from_attributes=True)
    return LinkCreated(**dict(shown), webhook_secret=created.webhook_secret)


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


@router.put("/{link_id}/disclosure", responses=problems(*BODY, 404))
async def set_disclosure(link_id: uuid.UUID, body: DisclosureIn, context: LinkWriter) -> LinkOut:
    """Choose what the vendor reads of the reseller's own fields on its leads, in its API
    reads and its change feed: besides the status, `status_reason` by default; `owner_id`
    and `notes` only when chosen here. Agreed by a signed-in owner or admin (an API key gets
    403), recorded with who and when; the database applies it to the vendor's every read."""
    link = await links.set_disclosure(
        context.tx, actor=context.principal, link_id=link_id, lead_fields=list(body.lead_fields)
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


WebhookReader = Annotated[Context[Principal], reads(Permission.LINKS_READ)]


@router.post(
    "/{link_id}/webhook-secret",
    status_code=status.HTTP_201_CREATED,
    responses=problems(*BODY, 404, 409),
)
async def rotate_webhook_secret(
    link_id: uuid.UUID, context: LinkWriter, body: WebhookSecretRequest | None = None
) -> WebhookSecretOut:
    """A new secret for the webhooks the vendor pushes to `POST /v1/hooks/{link_id}`, shown
    this once. The one it replaces keeps verifying for `overlap_seconds` (a day unless told),
    so the vendor's side can be changed over without losing a delivery. 409 for a link whose
    connector takes no webhooks."""
    request = body or WebhookSecretRequest()
    rotated = await links.rotate_webhook_secret(
        context.tx,
        actor=context.principal,
        keyring=context.runtime.keyring,
        link_id=link_id,
        overlap_seconds=request.overlap_seconds,
    )
    return WebhookSecretOut(
        secret=rotated.secret, previous_valid_until=rotated.previous_valid_until
    )


@router.get(
    "/{link_id}/webhooks",
    response_model=PageOf[WebhookDeliveryOut],
    responses=problems(400, 404),
)
async def list_webhooks(
    link_id: uuid.UUID, context: WebhookReader, cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT
) -> Response:
    """The webhooks the vendor pushed to this link, newest first: when each came, its status
    (received, held while the link is paused, applied, failed), why it failed, and what it
    made (counts, the rows it created or changed, records that could not be loaded). A
    vendor's key reads those it pushed to a link that actively links it."""
    page = await webhooks.list_deliveries(
        context.tx, principal=context.principal, link_id=link_id, cursor=cursor, limit=limit
    )
    return Response(page.to_json(), media_type="application/json")


@router.get("/{link_id}/webhooks/{delivery_id}", responses=problems(404))
async def get_webhook(
    link_id: uuid.UUID, delivery_id: uuid.UUID, context: WebhookReader
) -> WebhookDeliveryOut:
    delivery = await webhooks.get_delivery(
        context.tx, principal=context.principal, link_id=link_id, delivery_id=delivery_id
    )
    return WebhookDeliveryOut.model_validate(delivery)


@router.post(
    "/{link_id}/webhooks/{delivery_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(404),
)
async def replay_webhook(
    link_id: uuid.UUID, delivery_id: uuid.UUID, context: LinkWriter
) -> WebhookDeliveryOut:
    """Apply a delivery again as it was received (after fixing the link's mapping, say); held
    while the link is paused. What the first application made is not made twice."""
    delivery = await webhooks.replay(
        context.tx, actor=context.principal, link_id=link_id, delivery_id=delivery_id
    )
    return WebhookDeliveryOut.model_validate(delivery)
