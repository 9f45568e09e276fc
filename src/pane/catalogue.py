"""Every change pane records, in one catalogue: the event types and the payload each carries.

An event is ``<entity>.<what happened>``. An update carries ``changed``: exactly the fields that
changed, each as ``[old, new]``, whether a person changed them through the API or a vendor's
sync did. The change feed (``GET /v1/changes``), its live stream and, later, outbound webhooks
all speak this catalogue, and the OpenAPI document publishes it (components and ``webhooks``),
so a CRM integrator or the web app gets types. ``pane.services.events`` is the one writer.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Change = Annotated[
    list[Any],
    Field(min_length=2, max_length=2, description="`[old, new]`"),
]
Changed = Annotated[
    dict[str, Change],
    Field(description="Exactly the fields that changed, each as `[old, new]`."),
]


# --- what a vendor's sync (or push) brings -------------------------------------------------


class RecordCreated(Payload):
    external_id: str = Field(description="The vendor's id for it.")
    run_id: uuid.UUID | None = Field(
        default=None, description="The sync run that brought it; null when not synced."
    )
    delivery_id: uuid.UUID | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The webhook delivery that brought it, when the vendor pushed it (then "
        "`run_id` is null); absent otherwise.",
    )


class RecordUpdated(RecordCreated):
    changed: Changed
    version: int | None = Field(
        default=None, description="The version it is at now (its `ETag`), where it has one."
    )


class RecordDeleted(RecordCreated):
    """The vendor no longer has it: the row stays as a tombstone (`deleted_at`)."""


# --- the workspace's own objects --------------------------------------------------------------


class LinkState(Payload):
    status: str = Field(description="active, paused or needs_reauth.")
    connector: str


class LinkUpdated(LinkState):
    changed: Changed = Field(description="Config and schedule fields that changed.")
    secrets_replaced: bool = Field(description="New credentials were stored (never shown).")


class LinkNeedsReauth(LinkState):
    reason: str = Field(description="What the vendor said about the credentials.")


class SyncRunState(Payload):
    link_id: uuid.UUID
    trigger: str = Field(description="schedule, manual, webhook or full_resync")
    streams: list[str]
    full_resync: bool


class SyncRunCounts(Payload):
    link_id: uuid.UUID
    fetched: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    failed: int


class SyncRunProgress(SyncRunCounts):
    """After each page the run committed: the run's counts so far."""

    stream: str


class SyncRunFinished(SyncRunCounts):
    error: str | None = Field(description="Why it failed; null when it succeeded.")


class MemberRole(Payload):
    role: str


class MemberRoleChanged(Payload):
    changed: Changed


class InvitationState(Payload):
    email: str
    role: str


class ApiKeyState(Payload):
    name: str
    prefix: str
    scopes: list[str]
    expires_at: datetime | None = None


class WorkspaceCreated(Payload):
    name: str


class WorkspaceRenamed(Payload):
    changed: Changed


class EventType(StrEnum):
    LEAD_CREATED = "lead.created"
    LEAD_UPDATED = "lead.updated"
    LEAD_DELETED = "lead.deleted"
    CAMPAIGN_CREATED = "campaign.created"
    CAMPAIGN_UPDATED = "campaign.updated"
    CAMPAIGN_DELETED = "campaign.deleted"
    PRICE_ITEM_CREATED = "price_item.created"
    PRICE_ITEM_UPDATED = "price_item.updated"
    PRICE_ITEM_DELETED = "price_item.deleted"
    ASSET_CREATED = "asset.created"
    ASSET_UPDATED = "asset.updated"
    ASSET_DELETED = "asset.deleted"
    DEAL_CREATED = "deal.created"
    DEAL_UPDATED = "deal.updated"
    DEAL_DELETED = "deal.deleted"
    LINK_CREATED = "link.created"
    LINK_UPDATED = "link.updated"
    LINK_PAUSED = "link.paused"
    LINK_RESUMED = "link.resumed"
    LINK_NEEDS_REAUTH = "link.needs_reauth"
    LINK_DELETED = "link.deleted"
    SYNC_RUN_QUEUED = "sync_run.queued"
    SYNC_RUN_STARTED = "sync_run.started"
    SYNC_RUN_PROGRESS = "sync_run.progress"
    SYNC_RUN_SUCCEEDED = "sync_run.succeeded"
    SYNC_RUN_FAILED = "sync_run.failed"
    MEMBER_JOINED = "member.joined"
    MEMBER_ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    INVITATION_CREATED = "invitation.created"
    INVITATION_REVOKED = "invitation.revoked"
    API_KEY_CREATED = "api_key.created"
    API_KEY_REVOKED = "api_key.revoked"
    WORKSPACE_CREATED = "workspace.created"
    WORKSPACE_RENAMED = "workspace.renamed"

    @property
    def entity(self) -> str:
        return self.value.split(".", 1)[0]


PAYLOADS: dict[EventType, type[Payload]] = {
    EventType.LEAD_CREATED: RecordCreated,
    EventType.LEAD_UPDATED: RecordUpdated,
    EventType.LEAD_DELETED: RecordDeleted,
    EventType.CAMPAIGN_CREATED: RecordCreated,
    EventType.CAMPAIGN_UPDATED: RecordUpdated,
    EventType.CAMPAIGN_DELETED: RecordDeleted,
    EventType.PRICE_ITEM_CREATED: RecordCreated,
    EventType.PRICE_ITEM_UPDATED: RecordUpdated,
    EventType.PRICE_ITEM_DELETED: RecordDeleted,
    EventType.ASSET_CREATED: RecordCreated,
    EventType.ASSET_UPDATED: RecordUpdated,
    EventType.ASSET_DELETED: RecordDeleted,
    EventType.DEAL_CREATED: RecordCreated,
    EventType.DEAL_UPDATED: RecordUpdated,
    EventType.DEAL_DELETED: RecordDeleted,
    EventType.LINK_CREATED: LinkState,
    EventType.LINK_UPDATED: LinkUpdated,
    EventType.LINK_PAUSED: LinkState,
    EventType.LINK_RESUMED: LinkState,
    EventType.LINK_NEEDS_REAUTH: LinkNeedsReauth,
    EventType.LINK_DELETED: LinkState,
    EventType.SYNC_RUN_QUEUED: SyncRunState,
    EventType.SYNC_RUN_STARTED: SyncRunState,
    EventType.SYNC_RUN_PROGRESS: SyncRunProgress,
    EventType.SYNC_RUN_SUCCEEDED: SyncRunFinished,
    EventType.SYNC_RUN_FAILED: SyncRunFinished,
    EventType.MEMBER_JOINED: MemberRole,
    EventType.MEMBER_ROLE_CHANGED: MemberRoleChanged,
    EventType.MEMBER_REMOVED: MemberRole,
    EventType.INVITATION_CREATED: InvitationState,
    EventType.INVITATION_REVOKED: InvitationState,
    EventType.API_KEY_CREATED: ApiKeyState,
    EventType.API_KEY_REVOKED: ApiKeyState,
    EventType.WORKSPACE_CREATED: WorkspaceCreated,
    EventType.WORKSPACE_RENAMED: WorkspaceRenamed,
}

DESCRIPTIONS: dict[EventType, str] = {
    EventType.LEAD_CREATED: "A vendor's lead arrived.",
    EventType.LEAD_UPDATED: "A lead changed: the vendor's fields by sync, or the reseller's own "
    "(status, owner, notes) through the API.",
    EventType.LEAD_DELETED: "The vendor withdrew a lead.",
    EventType.CAMPAIGN_CREATED: "A vendor offers a new campaign.",
    EventType.CAMPAIGN_UPDATED: "A campaign changed.",
    EventType.CAMPAIGN_DELETED: "The vendor withdrew a campaign.",
    EventType.PRICE_ITEM_CREATED: "A new line on a vendor's or distributor's price list.",
    EventType.PRICE_ITEM_UPDATED: "A price list line changed (price, cost, validity).",
    EventType.PRICE_ITEM_DELETED: "A line left the price list.",
    EventType.ASSET_CREATED: "New collateral (datasheet, presentation, video).",
    EventType.ASSET_UPDATED: "Collateral changed.",
    EventType.ASSET_DELETED: "Collateral withdrawn.",
    EventType.DEAL_CREATED: "A deal registration arrived from a vendor.",
    EventType.DEAL_UPDATED: "A deal registration changed.",
    EventType.DEAL_DELETED: "The vendor withdrew a deal registration.",
    EventType.LINK_CREATED: "The workspace linked a vendor.",
    EventType.LINK_UPDATED: "A link's config, schedule or credentials changed.",
    EventType.LINK_PAUSED: "A link stopped syncing.",
    EventType.LINK_RESUMED: "A paused link syncs again.",
    EventType.LINK_NEEDS_REAUTH: "The vendor rejected a link's credentials; it stops syncing "
    "until they are replaced.",
    EventType.LINK_DELETED: "The workspace unlinked a vendor.",
    EventType.SYNC_RUN_QUEUED: "A sync was asked for.",
    EventType.SYNC_RUN_STARTED: "A worker started (or resumed) a sync run.",
    EventType.SYNC_RUN_PROGRESS: "A sync run committed a page.",
    EventType.SYNC_RUN_SUCCEEDED: "A sync run finished.",
    EventType.SYNC_RUN_FAILED: "A sync run ended with an error.",
    EventType.MEMBER_JOINED: "Someone joined the workspace.",
    EventType.MEMBER_ROLE_CHANGED: "A member's role changed.",
    EventType.MEMBER_REMOVED: "A member left or was removed.",
    EventType.INVITATION_CREATED: "Someone was invited.",
    EventType.INVITATION_REVOKED: "An invitation was withdrawn.",
    EventType.API_KEY_CREATED: "A workspace API key was issued.",
    EventType.API_KEY_REVOKED: "A workspace API key was revoked.",
    EventType.WORKSPACE_CREATED: "The workspace was created.",
    EventType.WORKSPACE_RENAMED: "The workspace was renamed.",
}


class Actor(BaseModel):
    type: Literal["user", "api_key", "vendor_key", "connector", "system"] = Field(
        description="Who made the change: a member, a workspace API key, a vendor's key, a "
        "link's connector (sync), or pane itself."
    )
    id: uuid.UUID | None = Field(description="The user, key or link id (null for pane itself).")


class EventBase(BaseModel):
    """One change in a workspace, as the change feed, its stream and webhooks deliver it."""

    seq: int = Field(description="The workspace's sequence number: commit order, no gaps.")
    id: uuid.UUID = Field(description="Unique across workspaces; use it to deduplicate.")
    type: str
    workspace_id: uuid.UUID
    entity_id: uuid.UUID = Field(description="The id of what changed (lead, link, member…).")
    vendor_id: uuid.UUID | None = Field(description="The vendor it belongs to, if any.")
    actor: Actor
    occurred_at: datetime = Field(description="When the change committed.")
    data: Any


def _model_name(event_type: EventType) -> str:
    return "".join(part.title() for part in event_type.value.replace(".", "_").split("_"))


# One model per event type, `type` fixed to its name: the discriminated union the change feed
# and the OpenAPI document use.
def _event_model(event_type: EventType) -> type[EventBase]:
    fixed_type: Any = Literal[event_type.value]
    return create_model(
        f"{_model_name(event_type)}Event",
        __base__=EventBase,
        __doc__=DESCRIPTIONS[event_type],
        type=(fixed_type, Field(description=event_type.value)),
        data=(PAYLOADS[event_type], ...),
    )


EVENT_MODELS: dict[EventType, type[EventBase]] = {
    event_type: _event_model(event_type) for event_type in EventType
}


# Any event, told apart by its `type`: what the change feed and its stream carry.
Event: Any = Annotated[Union[tuple(EVENT_MODELS.values())], Field(discriminator="type")]  # noqa: UP007
