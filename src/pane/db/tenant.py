"""The one place a transaction learns whose rows it may see.

Settings are transaction-local (``set_config(..., true)``), so when the transaction ends, by
commit, rollback or a broken connection, the pooled connection carries no tenant into the next
request. These run on every request, so they talk to asyncpg directly under the session's
transaction rather than through SQLAlchemy's statement pipeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from pane.db.engine import driver_connection
from pane.principal import Permission, Role

Bind: TypeAlias = AsyncSession | AsyncConnection | asyncpg.Connection


async def _driver(bind: Bind) -> asyncpg.Connection:
    if isinstance(bind, asyncpg.Connection):
        return bind
    return await driver_connection(bind)


@dataclass(frozen=True, slots=True)
class KeyMatch:
    kind: str
    key_id: uuid.UUID
    workspace_id: uuid.UUID | None
    vendor_id: uuid.UUID | None
    scopes: tuple[str, ...]


async def enter_workspace_as_user(
    bind: Bind, *, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> Role | None:
    """Scope the transaction to a workspace for a user; None (nothing visible) for non-members."""
    connection = await _driver(bind)
    role = await connection.fetchval("SELECT pane_enter_workspace($1, $2)", workspace_id, user_id)
    return Role(role) if role else None


async def _set(bind: Bind, name: str, value: uuid.UUID) -> None:
    connection = await _driver(bind)
    await connection.fetchval("SELECT set_config($1, $2, true)", name, str(value))


async def enter_user(bind: Bind, *, user_id: uuid.UUID) -> None:
    """Let a user read their own memberships (and the workspaces they belong to), nothing else."""
    await _set(bind, "pane.user_id", user_id)


async def enter_vendor(bind: Bind, *, vendor_id: uuid.UUID) -> None:
    await _set(bind, "pane.vendor_id", vendor_id)


async def enter_workspace(bind: Bind, *, workspace_id: uuid.UUID) -> None:
    """Scope to a workspace for a non-user principal (an API key, a worker job)."""
    await _set(bind, "pane.workspace_id", workspace_id)


async def match_api_key(bind: Bind, *, key_hash: bytes) -> KeyMatch | None:
    connection = await _driver(bind)
    row = await connection.fetchrow(
        "SELECT kind, key_id, workspace_id, vendor_id, scopes FROM pane_authenticate_key($1)",
        key_hash,
    )
    if row is None:
        return None
    return KeyMatch(
        kind=row["kind"],
        key_id=row["key_id"],
        workspace_id=row["workspace_id"],
        vendor_id=row["vendor_id"],
        scopes=tuple(row["scopes"]),
    )


async def begin_reading(
    connection: asyncpg.Connection,
    *,
    workspace_id: uuid.UUID,
    user_id: uuid.UUID,
    roles: Sequence[Role],
) -> None:
    """Open a read transaction scoped to a member in one round trip (a simple-protocol query
    cannot take parameters; the values are UUIDs and role names, rendered canonically)."""
    assert isinstance(workspace_id, uuid.UUID)
    assert isinstance(user_id, uuid.UUID)
    allowed = "{" + ",".join(role.value for role in roles) + "}"
    try:
        await connection.execute(
            f"BEGIN; SELECT pane_begin_reading('{workspace_id}', '{user_id}', '{allowed}')"
        )
    except asyncpg.InsufficientPrivilegeError as exc:
        if getattr(exc, "hint", None) == "pane:not-member":
            raise NotAMember from exc
        raise RoleNotAllowed from exc


async def end_reading(connection: asyncpg.Connection, *, commit: bool) -> None:
    """End the transaction and reset the session in the same round trip."""
    ending = ("COMMIT;\n" if commit else "ROLLBACK;\n") if connection.is_in_transaction() else ""
    await connection.execute(ending + connection.get_reset_query())


class NotAMember(Exception):
    """The user is not (or no longer) a member of the workspace in their token."""


class RoleNotAllowed(Exception):
    """The member's current role does not grant what the request needs."""


def known_scopes(scopes: tuple[str, ...]) -> frozenset[Permission]:
    valid = {permission.value for permission in Permission}
    return frozenset(Permission(scope) for scope in scopes if scope in valid)
