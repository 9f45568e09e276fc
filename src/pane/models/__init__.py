"""ORM tables, one module per aggregate. The schema itself is owned by the alembic migrations;
``pane migrate --check`` (and the test suite) fail when these models drift from it."""

from pane.models.apikey import ApiKey, VendorApiKey
from pane.models.asset import Asset
from pane.models.base import Base
from pane.models.campaign import Campaign
from pane.models.deal import Deal
from pane.models.event import AuditEntry, Event, OutboxEntry
from pane.models.lead import Lead
from pane.models.price import PriceItem, PriceList
from pane.models.sync import SyncCursor, SyncRun, SyncSeen
from pane.models.user import RefreshToken, User
from pane.models.vendor import Vendor, VendorLink
from pane.models.webhook import WebhookDelivery
from pane.models.workspace import Invitation, Membership, Workspace

__all__ = [
    "ApiKey",
    "Asset",
    "AuditEntry",
    "Base",
    "Campaign",
    "Deal",
    "Event",
    "Invitation",
    "Lead",
    "Membership",
    "OutboxEntry",
    "PriceItem",
    "PriceList",
    "RefreshToken",
    "SyncCursor",
    "SyncRun",
    "SyncSeen",
    "User",
    "Vendor",
    "VendorApiKey",
    "VendorLink",
    "WebhookDelivery",
    "Workspace",
]
