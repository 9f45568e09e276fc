"""ORM tables, one module per aggregate. The schema itself is owned by the alembic migrations."""

from pane.models.apikey import ApiKey, VendorApiKey
from pane.models.base import Base
from pane.models.event import AuditEntry, Event
from pane.models.lead import Lead
from pane.models.user import RefreshToken, User
from pane.models.vendor import Vendor, VendorLink
from pane.models.workspace import Invitation, Membership, Workspace

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Event",
    "Invitation",
    "Lead",
    "Membership",
    "RefreshToken",
    "User",
    "Vendor",
    "VendorApiKey",
    "VendorLink",
    "Workspace",
]
