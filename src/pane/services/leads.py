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
from pane.services.pagination import Page, decode_cursor, encode_cursor


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

LIST_COLUMNS = (
    "id",
    "workspace_id",
    "vendor_id",
    "external_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "title",
    "country",
    "status",
    "status_reason",
    "vendor_status",
    "score",
    "source",
    "campaign_ref",
    "owner_id",
    "notes",
    "accept_by",
    "vendor_created_at",
    "vendor_updated_at",
    "version",
    "created_at",
    "updated_at",
)
_SELECT = f"SELECT {', '.join(LIST_COLUMNS)} FROM leads"  # noqa: S608 - fixed column names
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


def build_list_query(
    principal: Principal, filters: LeadFilters, after: uuid.UUID | None, limit: int
) -> tuple[str, list[Any]]:
    """SQL and arguments for one page, newest first. Scoped by the principal's own column so
    the plan starts from an index that leads with it; RLS checks the same thing again."""
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if isinstance(principal, VendorPrincipal):
        where = [f"vendor_id = {arg(principal.vendor_id)}"]
    else:
        where = [f"workspace_id = {arg(principal.workspace_id)}"]
    if filters.vendor_id is not None:
        where.append(f"vendor_id = {arg(filters.vendor_id)}")
    where.append("deleted_at IS NULL")
    if filters.status is not None:
        where.append(f"status = {arg(filters.status.value)}")
    if filters.updated_since is not None:
        where.append(f"updated_at >= {arg(filters.updated_since)}")
    if filters.q:
        escaped = filters.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(f"{SEARCH_EXPRESSION} LIKE {arg('%' + escaped + '%')}")
    if after is not None:
        where.append(f"id < {arg(after)}")
    sql = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT {arg(limit + 1)}"
    return sql, args


async def list_leads(
    tx: Transaction,
    *,
    principal: Principal,
    filters: LeadFilters,
    cursor: str | None,
    limit: int,
) -> Page:
    after = decode_cursor("leads", cursor, (uuid.UUID,))[0] if cursor else None
    sql, args = build_list_query(principal, filters, after, limit)
    rows = await tx.connection.fetch(sql, *args)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor("leads", [rows[-1]["id"]])
    return Page(items=[dict(row) for row in rows], next_cursor=next_cursor)


def lead_json(lead: Lead, *, include_raw: bool = True) -> dict[str, Any]:
    data = {column: getattr(lead, column) for column in LIST_COLUMNS}
    if include_raw:
        data["raw"] = lead.raw
    return data


async def get_lead(
    tx: Transaction, *, principal: Principal, lead_id: uuid.UUID, for_update: bool = False
) -> Lead:
    query = select(Lead).where(Lead.id == lead_id, Lead.deleted_at.is_(None))
    if isinstance(principal, VendorPrincipal):
        query = query.where(Lead.vendor_id == principal.vendor_id)
    else:
        query = query.where(Lead.workspace_id == principal.workspace_id)
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
    if "status" in changes and changes["status"] is not None:
        _check_transition(lead, LeadStatus(changes["status"]))
    diff: dict[str, list[Any]] = {}
    for field, value in changes.items():
        if field == "status" and value is None:
            raise Invalid(
                "status cannot be null",
                errors=[{"field": "body.status", "message": "cannot be null"}],
            )
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
