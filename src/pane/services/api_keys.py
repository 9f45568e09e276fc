"""Workspace API keys for CRMs and scripts, and vendor API keys for vendor integrations.

Keys are shown once; only a SHA-256 digest (keys are 256-bit random, so a slow hash adds
nothing) and a short prefix for recognising them are stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from pane.catalogue import ApiKeyState, EventType
from pane.db.database import Transaction, vendor_scope, workspace_scope
from pane.errors import Invalid, NotFound
from pane.ids import new_id
from pane.models import ApiKey, Vendor, VendorApiKey
from pane.principal import (
    ApiKeyPrincipal,
    ApiKeyScope,
    Permission,
    UserPrincipal,
    VendorPrincipal,
    WorkspacePrincipal,
)
from pane.services import events
from pane.services.audit import record_audit
from pane.services.events import NewEvent
from pane.services.lists import BY_ID, ListQuery, Page
from pane.services.security import new_api_key, token_digest

_TOUCH_WORKSPACE_KEY = (
    "UPDATE api_keys SET last_used_at = now() WHERE workspace_id = $1 AND id = $2"
    " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
)
_TOUCH_VENDOR_KEY = (
    "UPDATE vendor_api_keys SET last_used_at = now() WHERE vendor_id = $1 AND id = $2"
    " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')"
)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    record: ApiKey | VendorApiKey
    key: str


async def create_workspace_key(
    tx: Transaction,
    *,
    actor: WorkspacePrincipal,
    name: str,
    scopes: list[ApiKeyScope],
    expires_at: datetime | None,
) -> IssuedKey:
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise Invalid(
            "expires_at must be in the future",
            errors=[{"field": "body.expires_at", "message": "must be in the future"}],
        )
    key, prefix = new_api_key()
    record = ApiKey(
        workspace_id=actor.workspace_id,
        id=new_id(),
        name=name,
        prefix=prefix,
        key_hash=token_digest(key),
        scopes=sorted({scope.value for scope in scopes}),
        created_by=actor.user_id if isinstance(actor, UserPrincipal) else None,
        expires_at=expires_at,
    )
    tx.session.add(record)
    await tx.session.flush()
    await _log(tx, actor, record, EventType.API_KEY_CREATED)
    return IssuedKey(record=record, key=key)


async def _log(
    tx: Transaction, actor: WorkspacePrincipal, record: ApiKey, event: EventType
) -> None:
    """A key issued or revoked goes to the change log and to the audit log alike."""
    state = ApiKeyState(
        name=record.name, prefix=record.prefix, scopes=record.scopes, expires_at=record.expires_at
    )
    await events.record(
        tx,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        events=[NewEvent(event, record.id, state)],
    )
    await record_audit(
        tx,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action=event.value,
        target_type="api_key",
        target_id=record.id,
        details={"name": record.name, "scopes": record.scopes},
    )


async def list_workspace_keys(
    tx: Transaction, *, workspace_id: uuid.UUID, cursor: str | None, limit: int
) -> Page:
    """The workspace's keys, oldest first, revoked ones included; never their secrets."""
    query = ListQuery(
        kind="api_keys",
        source="api_keys",
        columns="id, name, prefix, scopes, created_at, expires_at, last_used_at, revoked_at",
        order=BY_ID,
    )
    return await query.within("workspace_id", workspace_id).page(tx, cursor=cursor, limit=limit)


async def revoke_workspace_key(
    tx: Transaction, *, actor: WorkspacePrincipal, key_id: uuid.UUID
) -> ApiKey:
    record = await tx.session.get(ApiKey, (actor.workspace_id, key_id))
    if record is None:
        raise NotFound(f"no API key {key_id} in this workspace")
    if record.revoked_at is None:
        record.revoked_at = datetime.now(UTC)
        await tx.session.flush()
        await _log(tx, actor, record, EventType.API_KEY_REVOKED)
    return record


async def create_vendor_key(tx: Transaction, *, vendor_slug: str, name: str) -> IssuedKey:
    vendor = await tx.session.scalar(select(Vendor).where(Vendor.slug == vendor_slug))
    if vendor is None:
        raise NotFound(f"no vendor with slug {vendor_slug!r}")
    await tx.enter(vendor_scope(vendor.id))
    key, prefix = new_api_key()
    record = VendorApiKey(
        vendor_id=vendor.id, id=new_id(), name=name, prefix=prefix, key_hash=token_digest(key)
    )
    tx.session.add(record)
    await tx.session.flush()
    return IssuedKey(record=record, key=key)


async def authenticate_key(
    tx: Transaction, *, key: str
) -> ApiKeyPrincipal | VendorPrincipal | None:
    """Resolve a presented key and scope the transaction to its principal. Knowing the key's
    digest makes exactly that key row visible (``pane_authenticate_key``)."""
    row = await tx.connection.fetchrow(
        "SELECT kind, key_id, workspace_id, vendor_id, scopes FROM pane_authenticate_key($1)",
        token_digest(key),
    )
    if row is None:
        return None
    if row["kind"] == "vendor" and row["vendor_id"] is not None:
        await tx.enter(vendor_scope(row["vendor_id"]))
        await tx.connection.execute(_TOUCH_VENDOR_KEY, row["vendor_id"], row["key_id"])
        return VendorPrincipal(key_id=row["key_id"], vendor_id=row["vendor_id"])
    if row["workspace_id"] is None:
        return None
    await tx.enter(workspace_scope(row["workspace_id"]))
    await tx.connection.execute(_TOUCH_WORKSPACE_KEY, row["workspace_id"], row["key_id"])
    valid = {permission.value for permission in Permission}
    return ApiKeyPrincipal(
        key_id=row["key_id"],
        workspace_id=row["workspace_id"],
        scopes=frozenset(Permission(scope) for scope in row["scopes"] if scope in valid),
    )
