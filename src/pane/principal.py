"""Who is calling, and what they may do. Built once per request by the tenant dependency."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


class Permission(StrEnum):
    CHANGES_READ = "changes:read"
    CONTENT_READ = "content:read"
    LEADS_READ = "leads:read"
    LEADS_WRITE = "leads:write"
    LINKS_READ = "links:read"
    LINKS_WRITE = "links:write"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    KEYS_MANAGE = "keys:manage"
    AUDIT_READ = "audit:read"
    WORKSPACE_WRITE = "workspace:write"


_VIEWER = {
    Permission.CHANGES_READ,
    Permission.CONTENT_READ,
    Permission.LEADS_READ,
    Permission.LINKS_READ,
    Permission.MEMBERS_READ,
}
_MEMBER = _VIEWER | {Permission.LEADS_WRITE}
_ADMIN = _MEMBER | {
    Permission.LINKS_WRITE,
    Permission.MEMBERS_WRITE,
    Permission.KEYS_MANAGE,
    Permission.AUDIT_READ,
}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset(_VIEWER),
    Role.MEMBER: frozenset(_MEMBER),
    Role.ADMIN: frozenset(_ADMIN),
    Role.OWNER: frozenset(_ADMIN | {Permission.WORKSPACE_WRITE}),
}

ROLES_WITH: dict[Permission, tuple[Role, ...]] = {
    permission: tuple(role for role in Role if permission in ROLE_PERMISSIONS[role])
    for permission in Permission
}


class ApiKeyScope(StrEnum):
    """What a workspace API key may be granted: data access, never the power to mint keys or
    change who belongs to the workspace."""

    CHANGES_READ = Permission.CHANGES_READ.value
    CONTENT_READ = Permission.CONTENT_READ.value
    LEADS_READ = Permission.LEADS_READ.value
    LEADS_WRITE = Permission.LEADS_WRITE.value
    LINKS_READ = Permission.LINKS_READ.value
    LINKS_WRITE = Permission.LINKS_WRITE.value
    MEMBERS_READ = Permission.MEMBERS_READ.value
    AUDIT_READ = Permission.AUDIT_READ.value


API_KEY_SCOPES: frozenset[Permission] = frozenset(Permission(scope) for scope in ApiKeyScope)
VENDOR_PERMISSIONS: frozenset[Permission] = frozenset(
    {
        Permission.CHANGES_READ,
        Permission.CONTENT_READ,
        Permission.LEADS_READ,
        Permission.LINKS_READ,
    }
)


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """A member acting in a workspace. Their role is not carried here: it may change at any
    moment, so the database checks the current one on every request (``member_scope``), and
    decisions that depend on the exact role read it (``pane.services.members.current_role``)."""

    user_id: uuid.UUID
    workspace_id: uuid.UUID

    @property
    def actor(self) -> tuple[str, uuid.UUID]:
        return ("user", self.user_id)


@dataclass(frozen=True, slots=True)
class ApiKeyPrincipal:
    key_id: uuid.UUID
    workspace_id: uuid.UUID
    scopes: frozenset[Permission]

    @property
    def permissions(self) -> frozenset[Permission]:
        return self.scopes

    @property
    def actor(self) -> tuple[str, uuid.UUID]:
        return ("api_key", self.key_id)


@dataclass(frozen=True, slots=True)
class VendorPrincipal:
    key_id: uuid.UUID
    vendor_id: uuid.UUID

    @property
    def permissions(self) -> frozenset[Permission]:
        return VENDOR_PERMISSIONS

    @property
    def actor(self) -> tuple[str, uuid.UUID]:
        return ("vendor_key", self.key_id)


@dataclass(frozen=True, slots=True)
class AccountPrincipal:
    """A signed-in user who has no workspace selected (e.g. removed from all of them)."""

    user_id: uuid.UUID

    @property
    def permissions(self) -> frozenset[Permission]:
        return frozenset()

    @property
    def actor(self) -> tuple[str, uuid.UUID]:
        return ("user", self.user_id)


WorkspacePrincipal = UserPrincipal | ApiKeyPrincipal
Principal = UserPrincipal | ApiKeyPrincipal | VendorPrincipal
AnyPrincipal = Principal | AccountPrincipal
