"""Workspace API keys for CRMs and scripts, and vendor API keys for vendor integrations.

Keys are shown once; only a SHA-256 digest (keys are 256-bit random, so a slow hash adds
nothing) and a short prefix for recognising them are stored.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pane.db.engine import driver_connection
from pane.db.tenant import Bind, enter_vendor, enter_workspace, known_scopes, match_api_key
from pane.errors import NotFound, Unprocessable
from pane.ids import new_id
from pane.models import ApiKey, Vendor, VendorApiKey
from pane.principal import (
    API_KEY_SCOPES,
    ApiKeyPrincipal,
    Permission,
    UserPrincipal,
    VendorPrincipal,
    WorkspacePrincipal,
)
from pane.services.audit import record_audit
from pane.services.pagination import page_by_id
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
    session: AsyncSession,
    *,
    actor: WorkspacePrincipal,
    name: str,
    scopes: list[Permission],
    expires_at: datetime | None,
) -> IssuedKey:
    not_grantable = sorted(str(scope) for scope in set(scopes) - API_KEY_SCOPES)
    if not_grantable:
        raise Unprocessable(
            f"scopes not available to API keys: {', '.join(not_grantable)}",
            errors=[{"field": "body.scopes", "message": "not grantable to an API key"}],
        )
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise Unprocessable(
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
    session.add(record)
    await session.flush()
    await record_audit(
        session,
        workspace_id=actor.workspace_id,
        actor=actor.actor,
        action="api_key.created",
        target_type="api_key",
        target_id=record.id,
        details={"name": name, "scopes": record.scopes},
    )
    return IssuedKey(record=record, key=key)


async def list_workspace_keys(
    session: AsyncSession, *, workspace_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[ApiKey], str | None]:
    """The workspace's keys, oldest first, revoked ones included, and the cursor after them."""
    query = select(ApiKey).where(ApiKey.workspace_id == workspace_id)
    return await page_by_id(session, query, ApiKey.id, kind="api_keys", cursor=cursor, limit=limit)


async def revoke_workspace_key(
    session: AsyncSession, *, actor: WorkspacePrincipal, key_id: uuid.UUID
) -> ApiKey:
    record = await session.get(ApiKey, (actor.workspace_id, key_id))
    if record is None:
        raise NotFound(f"no API key {key_id} in this workspace")
    if record.revoked_at is None:
        record.revoked_at = datetime.now(UTC)
        await session.flush()
        await record_audit(
            session,
            workspace_id=actor.workspace_id,
            actor=actor.actor,
            action="api_key.revoked",
            target_type="api_key",
            target_id=key_id,
        )
    return record


async def create_vendor_key(session: AsyncSession, *, vendor_slug: str, name: str) -> IssuedKey:
    vendor = await session.scalar(select(Vendor).where(Vendor.slug == vendor_slug))
    if vendor is None:
        raise NotFound(f"no vendor with slug {vendor_slug!r}")
    await enter_vendor(session, vendor_id=vendor.id)
    key, prefix = new_api_key()
    record = VendorApiKey(
        vendor_id=vendor.id, id=new_id(), name=name, prefix=prefix, key_hash=token_digest(key)
    )
    session.add(record)
    await session.flush()
    return IssuedKey(record=record, key=key)


async def authenticate_key(
    connection: Bind, *, key: str
) -> ApiKeyPrincipal | VendorPrincipal | None:
    """Resolve a presented key and scope the transaction to its principal."""
    match = await match_api_key(connection, key_hash=token_digest(key))
    if match is None:
        return None
    driver = (
        connection
        if isinstance(connection, asyncpg.Connection)
        else (await driver_connection(connection))
    )
    if match.kind == "vendor" and match.vendor_id is not None:
        await enter_vendor(connection, vendor_id=match.vendor_id)
        await driver.execute(_TOUCH_VENDOR_KEY, match.vendor_id, match.key_id)
        return VendorPrincipal(key_id=match.key_id, vendor_id=match.vendor_id)
    if match.workspace_id is None:
        return None
    await enter_workspace(connection, workspace_id=match.workspace_id)
    await driver.execute(_TOUCH_WORKSPACE_KEY, match.workspace_id, match.key_id)
    return ApiKeyPrincipal(
        key_id=match.key_id, workspace_id=match.workspace_id, scopes=known_scopes(match.scopes)
    )
