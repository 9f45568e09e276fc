from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, Field
from starlette.responses import Response

from pane.api.deps import Context, in_workspace, reads, reads_rows
from pane.api.problems import AUTHENTICATED, BODY, problems
from pane.api.schemas import LeadDetail, LeadOut, LeadPatch, PageOf
from pane.api.vendors import NO_NUL
from pane.errors import Malformed
from pane.instants import Instant
from pane.models import Lead
from pane.principal import Permission, Principal, WorkspacePrincipal
from pane.services import leads
from pane.services.leads import LeadFilters, LeadStatus
from pane.services.lists import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/v1/leads", tags=["leads"], responses=problems(*AUTHENTICATED))

LeadReader = Annotated[Context[Principal], reads(Permission.LEADS_READ)]
LeadRows = Annotated[Context[Principal], reads_rows(Permission.LEADS_READ)]
LeadWriter = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.LEADS_WRITE)]

# Versions are PostgreSQL integers: at most ten digits, so a huge number never reaches int().
_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,10})"\s*$')
_MAX_VERSION = 2**31 - 1


def _detail(lead: Lead, response: Response) -> LeadDetail:
    """The lead, with its version as the response's ETag."""
    response.headers["ETag"] = f'"{lead.version}"'
    return LeadDetail.model_validate(lead, from_attributes=True)


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match)
    if match is None or int(match.group(1)) > _MAX_VERSION:
        raise Malformed('If-Match must be an ETag from this API, like "3"')
    return int(match.group(1))


class LeadQuery(BaseModel):
    """Filters and paging for the lead list, validated in one pass."""

    vendor_id: uuid.UUID | None = None
    status: LeadStatus | None = None
    updated_since: Instant | None = Field(
        default=None, description="Only leads changed at or after this instant (with its offset)."
    )
    q: str | None = Field(
        default=None,
        max_length=100,
        pattern=NO_NUL,
        description="Part of name, email or company.",
    )
    cursor: str | None = Field(
        default=None, max_length=512, description="`next_cursor` of the last page."
    )
    limit: int = Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size, at most 200."
    )


@router.get("", response_model=PageOf[LeadOut], responses=problems(400))
async def list_leads(context: LeadRows, query: Annotated[LeadQuery, Query()]) -> Response:
    """Leads, newest first, in stable pages. A vendor key sees its own leads in every workspace
    that actively links it. The vendor's raw payload is in the single-lead view."""
    page = await leads.list_leads(
        context.tx,
        principal=context.principal,
        filters=LeadFilters(
            vendor_id=query.vendor_id,
            status=query.status,
            updated_since=query.updated_since,
            q=query.q,
        ),
        cursor=query.cursor,
        limit=query.limit,
    )
    return Response(page.to_json(), media_type="application/json")


@router.get("/{lead_id}", responses=problems(404))
async def get_lead(lead_id: uuid.UUID, context: LeadReader, response: Response) -> LeadDetail:
    """One lead with the vendor's original payload. The `ETag` header carries its version for
    a later `If-Match`."""
    lead = await leads.get_lead(context.tx, principal=context.principal, lead_id=lead_id)
    return _detail(lead, response)


@router.patch(
    "/{lead_id}",
    responses=problems(*BODY, 404, 409, 412),
)
async def update_lead(
    lead_id: uuid.UUID,
    body: LeadPatch,
    context: LeadWriter,
    response: Response,
    if_match: Annotated[str | None, Header(description='The lead\'s ETag, e.g. "3".')] = None,
) -> LeadDetail:
    """Move a lead through the pipeline (new → accepted | rejected → working → converted | lost),
    assign an owner, or keep notes. Send `If-Match` to refuse (412) if someone changed it first.
    Rejecting needs a `status_reason`."""
    lead = await leads.update_lead(
        context.tx,
        actor=context.principal,
        lead_id=lead_id,
        expected_version=_expected_version(if_match),
        changes=body.model_dump(exclude_unset=True),
    )
    return _detail(lead, response)
