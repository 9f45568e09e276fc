"""Leads: the fast list path (SQL straight to JSON-ready dicts), detail, and guarded updates."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pane.catalogue import EventType, RecordUpdated
from pane.db.database import Transaction
from pane.errors import Conflict, Invalid, NotFound, Stale
from pane.models import Lead
from pane.principal import Principal, VendorPrincipal, WorkspacePrincipal
from pane.services import events
from pane.services.events import NewEvent
from pane.services.lists import BY_ID, ListQuery, Page


class LeadStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    WORKING = "working"
    CONVERTED = "converted"
    LOST = "lost"


# The reseller's pipeline; a lead may also be reopened from rejected or lost.
TRANSITIONS: dict[LeadStatus, frozenset[LeadStatus]] = {
    LeadStatus.NEW: frozenset({LeadStatus.ACCEPTED, LeadStatus.REJECTED}),
    LeadStatus.ACCEPTED: frozenset(
        {LeadStatus.WORKING, LeadStatus.CONVERTED, LeadStatus.LOST, LeadStatus.REJECTED}
    ),
    LeadStatus.WORKING: frozenset({LeadStatus.CONVERTED, LeadStatus.LOST}),
    LeadStatus.REJECTED: frozenset({LeadStatus.NEW, LeadStatus.ACCEPTED}),
    LeadStatus.LOST: frozenset({LeadStatus.WORKING}),
    LeadStatus.CONVERTED: frozenset(),
}

# What a lead list shows: every column but the vendor's payload (in the single-lead view), the
# tombstone marker (lists show live leads only) and the sync's note of its last write (events
# carry it).
LIST_COLUMNS = tuple(
    column.key
    for column in Lead.__table__.columns
    if column.key not in {"raw", "deleted_at", "last_changes"}
)
_ALL_COLUMNS = ", ".join(column.key for column in Lead.__table__.columns)
SEARCH_EXPRESSION = (
    "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || "
    "coalesce(email, '') || ' ' || coalesce(company, ''))"
)


@dataclass(frozen=True, slots=True)
class LeadFilters:
    vendor_id: uuid.UUID | None = None
    status: LeadStatus | None = None
    updated_since: datetime | None = None
    q: str | None = None


def _leads_of(principal: Principal) -> str:
    """Where a principal reads leads: a vendor's principal may not read the table itself, only
    the view that shows each link's disclosed fields (migration 0009)."""
    return "vendor_leads" if isinstance(principal, VendorPrincipal) else "leads"


def lead_list(principal: Principal, filters: LeadFilters) -> ListQuery:
    """Leads, newest first."""
    return (
        ListQuery.scoped(
            principal,
            kind="leads",
            source=_leads_of(principal),
            columns=", ".join(LIST_COLUMNS),
            order=BY_ID,
            descending=True,
        )
        .equals("vendor_id", filters.vendor_id)
        .equals("status", filters.status.value if filters.status else None)
        .at_least("updated_at", filters.updated_since)
        .contains(SEARCH_EXPRESSION, filters.q)
    )


async def list_leads(
    tx: Transaction,
    *,
    principal: Principal,
    filters: LeadFilters,
    cursor: str | None,
    limit: int,
) -> Page:
    return await lead_list(principal, filters).page(tx, cursor=cursor, limit=limit)


async def get_lead(
    tx: Transaction, *, principal: Principal, lead_id: uuid.UUID, for_update: bool = False
) -> Lead:
    if isinstance(principal, VendorPrincipal):
        row = await tx.connection.fetchrow(
            f"SELECT {_ALL_COLUMNS} FROM vendor_leads"  # noqa: S608 - fixed column names
            " WHERE vendor_id = $1 AND id = $2 AND deleted_at IS NULL",
            principal.vendor_id,
            lead_id,
        )
        if row is None:
            raise NotFound(f"no lead {lead_id}")
        return Lead(**dict(row))  # as the vendor may see it; never added to the session
    query = select(Lead).where(
        Lead.workspace_id == principal.workspace_id,
        Lead.id == lead_id,
        Lead.deleted_at.is_(None),
    )
    if for_update:
        query = query.with_for_update()
    lead = await tx.session.scalar(query)
    if lead is None:
        raise NotFound(f"no lead {lead_id}")
    return lead


async def update_lead(
    tx: Transaction,
    *,
    actor: WorkspacePrincipal,
    lead_id: uuid.UUID,
    expected_version: int | None,
    changes: dict[str, Any],
) -> Lead:
    """Apply ``changes`` (status, status_reason, owner_id, notes) and log them as one event."""
    lead = await get_lead(tx, principal=actor, lead_id=lead_id, for_update=True)
    if expected_version is not None and lead.version != expected_version:
        raise Stale(
            f"lead {lead_id} is at version {lead.version}, not {expected_version}; "
            "fetch it again and reapply your change",
            current_version=lead.version,
        )
    if "status" in changes:
        _check_transition(lead, LeadStatus(changes["status"]))
    diff: dict[str, list[Any]] = {}
    for field, value in changes.items():
        before = getattr(lead, field)
        if before != value:
            diff[field] = [before, value]
            setattr(lead, field, value)
    if lead.status == LeadStatus.REJECTED and not (lead.status_reason or "").strip():
        raise Invalid(
            "a rejected lead needs a status_reason the vendor can act on",
            errors=[{"field": "body.status_reason", "message": "required when rejected"}],
        )
    if not diff:
        return lead
    try:
        await tx.session.flush()
    except IntegrityError as exc:
        if "owner_id" in diff:
            raise Invalid(
                "owner_id must be a member of this workspace",
                errors=[{"field": "body.owner_id", "message": "not a member of this workspace"}],
            ) from exc
        raise
    await events.record(
        tx,
        workspace_id=lead.workspace_id,
        actor=actor.actor,
        events=[
            NewEvent(
                EventType.LEAD_UPDATED,
                lead.id,
                RecordUpdated(external_id=lead.external_id, changed=diff, version=lead.version),
                vendor_id=lead.vendor_id,
            )
        ],
    )
    return lead


def _check_transition(lead: Lead, target: LeadStatus) -> None:
    current = LeadStatus(lead.status)
    if target == current:
        return
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (final)"
        raise Conflict(
            f"a lead cannot move from {current} to {target}; from {current} it can go to {allowed}"
        )
