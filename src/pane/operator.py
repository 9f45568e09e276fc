"""Operator tasks run from the CLI on the host.

Tasks that cross workspaces (key rotation) or change the global catalog run on the owner
connection (PANE_MIGRATION_DATABASE_URL); everything else runs as pane_app under RLS like a
request would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import select, tuple_, update

from pane.config import Settings
from pane.db.database import Database, Transaction
from pane.models import VendorLink
from pane.secrets import load_key_ring
from pane.services import api_keys, auth, vendors

_BATCH = 500


@asynccontextmanager
async def _transaction(url: str | None, *, pooled: bool = False) -> AsyncIterator[Transaction]:
    assert url
    database = Database(url, pool_size=1, transaction_pooler=pooled)
    try:
        async with database.transaction(orm=True) as tx:
            yield tx
    finally:
        await database.dispose()


def _owner_url(settings: Settings) -> str | None:
    return settings.migration_database_url or settings.database_url


class OperatorRoleError(RuntimeError):
    pass


async def _require_rls_bypass(tx: Transaction) -> None:
    """Forced RLS applies to the owner too; without BYPASSRLS a cross-workspace task would
    silently see nothing and report success."""
    row = await tx.connection.fetchval(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    if not row:
        raise OperatorRoleError(
            "this command works across workspaces and needs the owner role with BYPASSRLS: "
            "set PANE_MIGRATION_DATABASE_URL (see README, 'Running on your own PostgreSQL')"
        )


async def rotate_credentials(settings: Settings) -> int:
    keyring = load_key_ring(settings)
    rotated = 0
    async with _transaction(_owner_url(settings)) as tx:
        await _require_rls_bypass(tx)
        last: tuple[uuid.UUID, uuid.UUID] | None = None
        while True:
            query = (
                select(VendorLink.workspace_id, VendorLink.id, VendorLink.credentials_encrypted)
                .where(VendorLink.credentials_encrypted.is_not(None))
                .order_by(VendorLink.workspace_id, VendorLink.id)
                .limit(_BATCH)
            )
            if last is not None:
                query = query.where(tuple_(VendorLink.workspace_id, VendorLink.id) > tuple_(*last))
            rows = (await tx.session.execute(query)).all()
            if not rows:
                return rotated
            for workspace_id, link_id, sealed in rows:
                assert sealed is not None
                await tx.session.execute(
                    update(VendorLink)
                    .where(VendorLink.workspace_id == workspace_id, VendorLink.id == link_id)
                    .values(credentials_encrypted=keyring.rotate(sealed))
                )
                rotated += 1
            last = (rows[-1][0], rows[-1][1])


async def create_account(
    settings: Settings, *, email: str, name: str, workspace: str, password: str
) -> tuple[uuid.UUID, uuid.UUID]:
    async with _transaction(
        settings.database_url, pooled=settings.database_transaction_pooler
    ) as tx:
        user = await auth.create_user(tx, email=email, password=password, name=name)
        created = await auth.create_workspace(tx, name=workspace, owner_id=user.id)
        return user.id, created.id


async def add_catalog_vendor(
    settings: Settings, *, slug: str, name: str, kind: str, website: str | None
) -> uuid.UUID:
    async with _transaction(_owner_url(settings)) as tx:
        vendor = await vendors.add_vendor(tx, slug=slug, name=name, kind=kind, website=website)
        return vendor.id


async def issue_vendor_key(settings: Settings, *, vendor_slug: str, name: str) -> str:
    async with _transaction(
        settings.database_url, pooled=settings.database_transaction_pooler
    ) as tx:
        issued = await api_keys.create_vendor_key(tx, vendor_slug=vendor_slug, name=name)
        return issued.key
