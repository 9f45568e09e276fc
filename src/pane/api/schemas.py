"""Request and response shapes. Requests refuse unknown fields. A single object's response is
built from its model here (FastAPI checks it against the route's declared model); lists go from
SQL rows straight to JSON (``Page.to_json``) and their models only document them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    MISSING,
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from pane.connectors.records import Stream
from pane.instants import Instant
from pane.models import Workspace
from pane.principal import ApiKeyScope, Permission, Role
from pane.services.leads import LeadStatus

# Some character that is not blank, blank being what str.isspace() (and so str.strip()) says.
# Spelled out because \s means three things: pydantic-core's Rust regex leaves \x1c-\x1f out,
# and JSON Schema's (ECMA-262) also \x85 while it adds \ufeff.
NOT_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# The lengths count what was sent, as the document says; then the surrounding blanks go.
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NOT_BLANK),
    AfterValidator(str.strip),
]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,62}$")]


def _find_nul(value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _find_nul(key, path) or _find_nul(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _find_nul(item, f"{path}.{index}")
            if found:
                return found
    return None


class Strict(BaseModel):
    """Request bodies: unknown fields refused, and no NUL characters anywhere (PostgreSQL
    cannot store them in text or jsonb)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul_characters(cls, data: Any) -> Any:
        found = _find_nul(data, "body") if isinstance(data, dict) else None
        if found:
            raise ValueError(f"{found} contains a NUL character, which cannot be stored")
        return data


class SignUp(Strict):
    email: EmailStr
    password: Password
    name: Name
    workspace_name: Name


class LogIn(Strict):
    email: EmailStr
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    workspace_id: uuid.UUID | None = None


class RefreshRequest(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    workspace_id: uuid.UUID | None = Field(
        default=None, description="Switch to another workspace you belong to."
    )


class LogOut(Strict):
    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int
    workspace_id: uuid.UUID | None


class WorkspaceOut(BaseModel):
    id: uuid.UUID
    name: str
    role: Role | None = Field(default=None, description="Yours there, where it applies.")
    created_at: datetime

    @classmethod
    def of(cls, workspace: Workspace, role: str | None = None) -> WorkspaceOut:
        return cls(id=workspace.id, name=workspace.name, role=role, created_at=workspace.created_at)


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    created_at: datetime


class SignedUp(BaseModel):
    user: UserOut
    workspace: WorkspaceOut
    tokens: Tokens


class Me(BaseModel):
    kind: Literal["user", "api_key", "vendor"]
    user: UserOut | None = None
    workspace: WorkspaceOut | None = None
    workspaces: list[WorkspaceOut] = Field(default_factory=list)
    permissions: list[Permission]
    vendor_id: uuid.UUID | None = None


class NewWorkspace(Strict):
    name: Name


class WorkspaceRename(Strict):
    name: Name


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    joined_at: datetime


class RoleChange(Strict):
    role: Role


class InvitationIn(Strict):
    email: EmailStr
    role: Role = Role.MEMBER


class InvitationOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime


class InvitationIssued(InvitationOut):
    token: str = Field(description="Shown once. The invitee accepts with it.")


class AcceptInvitation(Strict):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _grantable(value: Any, handler: ValidatorFunctionWrapHandler) -> ApiKeyScope:
    try:
        scope: ApiKeyScope = handler(value)
    except ValidationError:
        grantable = ", ".join(ApiKeyScope)
        raise ValueError(f"{value!r} is not a scope of API keys ({grantable})") from None
    return scope


class ApiKeyIn(Strict):
    name: Name
    scopes: list[Annotated[ApiKeyScope, WrapValidator(_grantable)]] = Field(min_length=1)
    expires_at: Instant | None = Field(
        default=None, description="With a timezone, e.g. 2027-01-01T00:00:00Z."
    )


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyOut):
    key: str = Field(description="Shown once; pane keeps only a digest.")


class VendorOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    kind: str
    website: str | None


SyncInterval = Annotated[
    int, Field(ge=60, le=7 * 86400, description="Seconds between incremental syncs.")
]
FullResyncInterval = Annotated[
    int,
    Field(
        ge=3600,
        le=90 * 86400,
        description="Seconds between full resyncs, which catch deletions incremental reads miss.",
    ),
]


class LinkIn(Strict):
    vendor_id: uuid.UUID
    connector: Slug
    config: dict[str, Any] = Field(default_factory=dict)
    credentials: dict[str, Any] | None = Field(
        default=None, description="Encrypted at rest and never returned."
    )
    sync_interval_seconds: SyncInterval = 900
    full_resync_interval_seconds: FullResyncInterval = 86400


class LinkUpdate(Strict):
    config: dict[str, Any] | None = None
    credentials: dict[str, Any] | None = None
    sync_interval_seconds: SyncInterval | None = None
    full_resync_interval_seconds: FullResyncInterval | None = None


class LinkOut(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    vendor_id: uuid.UUID
    connector: str
    config: dict[str, Any]
    has_credentials: bool
    status: str = Field(description="active, paused, needs_reauth (new credentials needed)")
    sync_interval_seconds: int
    full_resync_interval_seconds: int
    next_sync_at: datetime
    last_synced_at: datetime | None
    last_full_sync_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    has_webhook_secret: bool = Field(
        description="Whether the link has a secret vendors sign webhooks with; they push to "
        "`POST /v1/hooks/{id}`."
    )
    webhook_previous_secret_until: datetime | None = Field(
        description="During a secret rotation, until when the previous secret still verifies."
    )
    disclosed_lead_fields: list[str] = Field(
        description="Which of the reseller's own fields on a lead the vendor may read besides "
        "its status (of status_reason, owner_id, notes); the vendor's own fields are its own."
    )
    disclosure_agreed_by: uuid.UUID | None = Field(
        description="The member who last agreed to what the vendor sees; null: the default."
    )
    disclosure_agreed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DisclosureIn(Strict):
    lead_fields: list[Literal["status_reason", "owner_id", "notes"]] = Field(
        max_length=3,
        description="Of the reseller's own fields on a lead, those the vendor may read besides "
        "the status it always sees: `status_reason` (why a lead was rejected), `owner_id` (who "
        "works it), `notes` (the reseller's working notes). The rest read as null.",
    )


class LinkCreated(LinkOut):
    webhook_secret: str | None = Field(
        description="The `whsec_` secret the vendor signs the webhooks it pushes to this link "
        "with, shown this once (rotate it to see a new one); null for a link whose connector "
        "takes no webhooks."
    )


class WebhookSecretRequest(Strict):
    overlap_seconds: int = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="How long the secret being replaced keeps verifying, while the vendor's "
        "side is changed over; 0 ends it at once.",
    )


class WebhookSecretOut(BaseModel):
    secret: str = Field(description="The new `whsec_` secret, shown this once.")
    previous_valid_until: datetime | None = Field(
        description="Until when the secret it replaced still verifies; null: it no longer does."
    )


class WebhookReceived(BaseModel):
    id: uuid.UUID = Field(description="The delivery, as the link's webhook log lists it.")
    status: str = Field(description="received (applied within seconds) or held (link paused)")
    duplicate: bool = Field(description="This delivery had already been received.")


class WebhookDeliveryOut(BaseModel):
    id: uuid.UUID
    link_id: uuid.UUID
    webhook_id: str = Field(description="The vendor's id for the delivery.")
    received_at: datetime
    status: str = Field(
        description="received (to be applied), held (the link is paused), applied or failed"
    )
    attempts: int
    error: str | None = Field(description="Why the body could not be read, for a failed one.")
    processed_at: datetime | None
    created: int
    updated: int
    unchanged: int
    failed: int
    failures: list[dict[str, Any]] = Field(
        description="Records that could not be loaded: stream, reason and the vendor's payload."
    )
    records: list[uuid.UUID] = Field(description="The rows it created or changed.")


class SyncRequest(Strict):
    streams: list[Stream] | None = Field(
        default=None,
        min_length=1,
        description="Streams to read; all the link reads when omitted.",
    )
    full_resync: bool = Field(
        default=False,
        description="Read everything from the start; rows the vendor no longer has become "
        "tombstones.",
    )


class SyncRunOut(BaseModel):
    id: uuid.UUID
    link_id: uuid.UUID
    trigger: str = Field(description="schedule, manual, webhook or full_resync")
    streams: list[str]
    full_resync: bool
    status: str = Field(description="queued, running, succeeded or failed")
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    fetched: int
    created: int
    updated: int
    unchanged: int
    deleted: int
    failed: int
    failures: list[dict[str, Any]] = Field(
        description="Records that could not be loaded: stream, reason and the vendor's payload "
        "(the first 200)."
    )
    error: str | None


class LeadOut(BaseModel):
    id: uuid.UUID
    workspace_id: uuid.UUID
    vendor_id: uuid.UUID
    external_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    company: str | None
    title: str | None
    country: str | None
    status: LeadStatus = Field(description="Where the lead is in the reseller's own pipeline.")
    status_reason: str | None
    vendor_status: str | None = Field(
        description="The vendor's own word for the lead's state (Open, Pending, Qualified…), "
        "as its last sync said."
    )
    score: int | None
    source: str | None
    campaign_ref: str | None
    owner_id: uuid.UUID | None
    notes: str | None
    accept_by: datetime | None
    vendor_created_at: datetime | None
    vendor_updated_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime


class LeadDetail(LeadOut):
    raw: dict[str, Any] = Field(description="The vendor's original payload.")


class LeadPatch(Strict):
    status: LeadStatus | MISSING = Field(
        default=MISSING, description="Omit it to keep the status; never null."
    )
    status_reason: Annotated[str, StringConstraints(max_length=2000)] | None = None
    owner_id: uuid.UUID | None = None
    notes: Annotated[str, StringConstraints(max_length=20000)] | None = None


class AuditOut(BaseModel):
    id: uuid.UUID
    actor_type: str
    actor_id: uuid.UUID | None
    action: str
    target_type: str | None
    target_id: str | None
    ip: str | None
    request_id: str | None
    details: dict[str, Any]
    created_at: datetime


T = TypeVar("T")


class PageOf(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
