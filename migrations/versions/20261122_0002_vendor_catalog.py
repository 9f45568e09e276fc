"""Seed the vendor catalog with well-known vendors and distributors.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

Operators add more with ``pane vendors add``; slugs are the stable handle.
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
import uuid_utils
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATALOG = [
    ("cisco", "Cisco", "vendor", "https://www.cisco.com"),
    ("hpe", "Hewlett Packard Enterprise", "vendor", "https://www.hpe.com"),
    ("dell", "Dell Technologies", "vendor", "https://www.dell.com"),
    ("lenovo", "Lenovo", "vendor", "https://www.lenovo.com"),
    ("microsoft", "Microsoft", "vendor", "https://www.microsoft.com"),
    ("fortinet", "Fortinet", "vendor", "https://www.fortinet.com"),
    ("palo-alto-networks", "Palo Alto Networks", "vendor", "https://www.paloaltonetworks.com"),
    ("check-point", "Check Point Software", "vendor", "https://www.checkpoint.com"),
    ("sophos", "Sophos", "vendor", "https://www.sophos.com"),
    ("vmware", "VMware by Broadcom", "vendor", "https://www.vmware.com"),
    ("veeam", "Veeam", "vendor", "https://www.veeam.com"),
    ("netapp", "NetApp", "vendor", "https://www.netapp.com"),
    ("pure-storage", "Pure Storage", "vendor", "https://www.purestorage.com"),
    ("juniper", "Juniper Networks", "vendor", "https://www.juniper.net"),
    ("aruba", "HPE Aruba Networking", "vendor", "https://www.arubanetworks.com"),
    ("crowdstrike", "CrowdStrike", "vendor", "https://www.crowdstrike.com"),
    ("nutanix", "Nutanix", "vendor", "https://www.nutanix.com"),
    ("citrix", "Citrix", "vendor", "https://www.citrix.com"),
    ("ubiquiti", "Ubiquiti", "vendor", "https://www.ui.com"),
    ("acronis", "Acronis", "vendor", "https://www.acronis.com"),
    ("td-synnex", "TD SYNNEX", "distributor", "https://www.tdsynnex.com"),
    ("ingram-micro", "Ingram Micro", "distributor", "https://www.ingrammicro.com"),
    ("arrow", "Arrow Electronics", "distributor", "https://www.arrow.com"),
    (
        "exclusive-networks",
        "Exclusive Networks",
        "distributor",
        "https://www.exclusive-networks.com",
    ),
    ("also", "ALSO", "distributor", "https://www.also.com"),
    ("pax8", "Pax8", "distributor", "https://www.pax8.com"),
]

vendors = sa.table(
    "vendors",
    sa.column("id", sa.Uuid),
    sa.column("slug", sa.Text),
    sa.column("name", sa.Text),
    sa.column("kind", sa.Text),
    sa.column("website", sa.Text),
)


def _new_id() -> uuid.UUID:
    """A time-ordered UUIDv7, as pane's ids are."""
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


def upgrade() -> None:
    op.bulk_insert(
        vendors,
        [
            {"id": _new_id(), "slug": slug, "name": name, "kind": kind, "website": website}
            for slug, name, kind, website in CATALOG
        ],
    )


def downgrade() -> None:
    op.execute(vendors.delete().where(vendors.c.slug.in_([slug for slug, *_ in CATALOG])))
