"""The change feed and its live stream."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Query, Request
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from pane.api.deps import Context, reads_rows, scope_of
from pane.api.problems import AUTHENTICATED, component_ref, problems
from pane.catalogue import DESCRIPTIONS, EVENT_MODELS, Event, EventType
from pane.errors import Malformed
from pane.principal import ApiKeyPrincipal, Permission, Principal, UserPrincipal, VendorPrincipal
from pane.services import changes
from pane.services.changes import Change
from pane.services.hub import Delivery, StreamClosed

router = APIRouter(prefix="/v1/changes", tags=["changes"], responses=problems(*AUTHENTICATED))

ChangeReader = Annotated[Context[Principal], reads_rows(Permission.CHANGES_READ)]
MAX_PAGE = 1000
# A seq, short enough to be a PostgreSQL bigint.
LAST_EVENT_ID = r"^[0-9]{1,18}$"

After = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**63 - 1,
        description="The `seq` of the last event you handled; omit to start from the oldest "
        "event kept.",
    ),
]
Types = Annotated[
    list[EventType] | None,
    Query(description="Only these event types (repeat the parameter for several)."),
]
WorkspaceParam = Annotated[
    uuid.UUID | None,
    Query(description="Vendor keys: the workspace to read (one that links your vendor)."),
]
VendorFilter = Annotated[uuid.UUID | None, Query(description="Only events of this vendor.")]


class ChangesPage(BaseModel):
    items: list[Event] = Field(description="Events in sequence (commit) order.")
    next_after: int = Field(description="Pass as `after` to resume after this page.")
    has_more: bool = Field(description="More events are waiting: ask again at once.")


@router.get("", response_model=ChangesPage, responses=problems(404, 410))
async def list_changes(
    context: ChangeReader,
    after: After = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most 1000.")] = 100,
    types: Types = None,
    vendor_id: VendorFilter = None,
    workspace_id: WorkspaceParam = None,
) -> Response:
    """Every committed change of the workspace, exactly once and in commit order, from after
    `after`. Keep `next_after` and pass it back to resume; nothing is skipped, even a
    transaction that committed late. Events are kept for a limited time (30 days by default):
    a position older than that is answered with 410, saying how to resync."""
    page = await changes.read(
        context.tx,
        workspace_id=changes.workspace_to_read(context.principal, workspace_id),
        after=after or 0,
        limit=limit,
        types=types,
        vendor_id=vendor_id,
        for_vendor=isinstance(context.principal, VendorPrincipal),
    )
    return Response(page.to_json(), media_type="application/json")


_ENDS_ACCESS = frozenset({EventType.MEMBER_REMOVED, EventType.API_KEY_REVOKED})


def _access_ender(principal: Principal) -> tuple[EventType, uuid.UUID] | None:
    """The event that would take this stream's access away: its member removed, its key
    revoked (a vendor key's revocation closes its connections elsewhere)."""
    if isinstance(principal, UserPrincipal):
        return EventType.MEMBER_REMOVED, principal.user_id
    if isinstance(principal, ApiKeyPrincipal):
        return EventType.API_KEY_REVOKED, principal.key_id
    return None


def _all_frames(delivery: Delivery) -> bytes:
    """Every event of the delivery as one write, made once for the channel's clients."""
    frames = delivery.once("sse", _frames)
    return delivery.once("sse-all", lambda _: b"".join(frames))


def _enders(items: list[Change]) -> frozenset[tuple[str, uuid.UUID]]:
    return frozenset((item.type, item.entity_id) for item in items if item.type in _ENDS_ACCESS)


def _frames(items: list[Change]) -> list[bytes]:
    """Each event as a Server-Sent Event, ready to write."""
    return [
        ServerSentEvent(data=item.document, id=str(item.seq), event=item.type).encode()
        for item in items
    ]


@router.get(
    "/stream",
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Server-Sent Events: `id` is the event's `seq`, `event` its type, "
            "`data` the event as in the feed. Comment lines keep the connection alive.",
        },
        **problems(400, 404, 410),
    },
)
async def stream_changes(
    request: Request,
    context: ChangeReader,
    after: After = None,
    types: Types = None,
    vendor_id: VendorFilter = None,
    workspace_id: WorkspaceParam = None,
    last_event_id: Annotated[
        str | SkipJsonSchema[None],
        Header(
            description="Sent by EventSource on reconnect: resume after this `seq`.",
            json_schema_extra={"pattern": LAST_EVENT_ID},
        ),
    ] = None,
) -> Response:
    """The change feed, live: the events after `after` (or `Last-Event-ID`), then each new one
    as it commits. Without either, only what happens from now on. The stream ends when the
    server stops, when your access token expires, or when your access is taken away; reconnect
    with `Last-Event-ID` to carry on without a gap."""
    principal = context.principal
    workspace = changes.workspace_to_read(principal, workspace_id)
    start = after
    if last_event_id is not None:
        # Not left to FastAPI, which would answer 422: a header that is not a seq is a 400.
        if re.fullmatch(LAST_EVENT_ID, last_event_id) is None:
            raise Malformed("Last-Event-ID must be the seq of an event from this stream")
        start = int(last_event_id)
    if start is None:
        start = await changes.latest(context.tx, workspace_id=workspace)
    # A position too old is refused now, with 410, rather than in the middle of the stream.
    await changes.read(context.tx, workspace_id=workspace, after=start, limit=1)
    wanted = set(types) if types else None
    filtered = wanted is not None or vendor_id is not None
    ender = _access_ender(principal)
    for_vendor = isinstance(principal, VendorPrincipal)
    runtime = context.runtime
    ends_at = context.expires_at

    def selected(item: Change) -> bool:
        return (wanted is None or item.type in wanted) and (
            vendor_id is None or item.vendor_id == vendor_id
        )

    async def events() -> AsyncIterator[bytes]:
        sent = start
        try:
            async with runtime.hub.subscribe(principal, workspace) as (subscriber, live_from):
                while sent < live_from:  # catch up, as this principal, through the feed
                    async with runtime.database.transaction(scope_of(principal)) as tx:
                        page = await changes.read(
                            tx,
                            workspace_id=workspace,
                            after=sent,
                            limit=MAX_PAGE,
                            types=types,
                            vendor_id=vendor_id,
                            for_vendor=for_vendor,
                        )
                    caught_up = [item for item in page.items if item.seq <= live_from]
                    if caught_up:
                        yield b"".join(_frames(caught_up))
                    sent = min(page.next_after, live_from) if page.has_more else live_from
                while True:
                    timeout = None if ends_at is None else ends_at - time.time()
                    async with asyncio.timeout(timeout):
                        delivery = await subscriber.queue.get()
                    if delivery is None:
                        return
                    # One write per delivery, of frames made once for all the channel's
                    # clients; a client that filters nothing gets the very same bytes.
                    items = delivery.items
                    frames = delivery.once("sse", _frames)
                    ends = ender is not None and ender in delivery.once("enders", _enders)
                    if not filtered and not ends and items[0].seq > sent:
                        sent = items[-1].seq
                        yield _all_frames(delivery)
                        continue
                    out: list[bytes] = []
                    for item, frame in zip(items, frames, strict=True):
                        if item.seq <= sent:
                            continue
                        sent = item.seq
                        if ends and (item.type, item.entity_id) == ender:
                            if out:
                                yield b"".join(out)
                            return
                        if selected(item):
                            out.append(frame)
                    if out:
                        yield b"".join(out)
        except (StreamClosed, TimeoutError):
            return

    return EventSourceResponse(
        events(),
        ping=runtime.settings.stream_ping_seconds,
        send_timeout=30,
        # the server is stopping: the hub ends every stream, which then closes cleanly
        shutdown_event=runtime.hub.shutdown_signal,
        shutdown_grace_period=2,
    )


def publish_catalogue(app: FastAPI) -> None:
    """Every event type in the OpenAPI document's ``webhooks`` section, its payload the event's
    component (the one the feed's items refer to): what the change feed, its stream and
    outbound webhooks carry. The payload is named in the operation rather than taken as a
    parameter: a parameter would have FastAPI declare its own validation-error answer, and a
    receiver's answers are not pane's to describe."""
    for event_type, model in EVENT_MODELS.items():

        async def delivery() -> None:
            """Documentation only: pane sends this; nothing here receives it."""

        app.webhooks.add_api_route(
            event_type.value,
            delivery,
            methods=["POST"],
            summary=event_type.value,
            description=DESCRIPTIONS[event_type],
            tags=["events"],
            status_code=204,
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": component_ref(model.__name__)}}
                    },
                }
            },
        )
