from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

from pane.api.deps import Context, in_workspace, reads, reads_rows
from pane.api.problems import AUTHENTICATED, BODY, problems
from pane.api.schemas import LeadDetail, LeadOut, LeadPatch, PageOf
from pane.api.vendors import NO_NUL, Cursor, Limit
from pane.errors import Malformed
from pane.instants import Instant
from pane.models import Lead
from pane.principal import Permission, Principal, WorkspacePrincipal
from pane.services import leads
from pane.services.leads import LeadFilters, LeadStatus
from pane.services.lists import DEFAULT_LIMIT

router = APIRouter(prefix="/v1/leads", tags=["leads"], responses=problems(*AUTHENTICATED))

LeadReader = Annotated[Context[Principal], reads(Permission.LEADS_READ)]
LeadRows = Annotated[Context[Principal], reads_rows(Permission.LEADS_READ)]
LeadWriter = Annotated[Context[WorkspacePrincipal], in_workspace(Permission.LEADS_WRITE)]

# A version is a PostgreSQL integer, 0 to 2**31 - 1, spelled out digit by digit: the document
# publishes this pattern and _expected_version checks it, so both say the same.
_VERSION = (
    r"0|[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}"
    r"|2147[0-3][0-9]{5}|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}"
    r"|21474836[0-3][0-9]|214748364[0-7]"
)
IF_MATCH = rf'^(?:\*|(?:W/)?"({_VERSION})")$'


def _detail(lead: Lead, response: Response) -> LeadDetail:
    """The lead, with its version as the response's ETag."""
    response.headers["ETag"] = f'"{lead.version}"'
    return LeadDetail.model_validate(lead, from_attributes=True)


def _expected_version(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    # Not left to FastAPI, which would answer 422: a header that is not an ETag is a 400.
    match = re.fullmatch(IF_MATCH, if_match)
    if match is None:
        raise Malformed('If-Match must be an ETag from this API, like "3"')
    return int(match.group(1)) if match.group(1) else None


UpdatedSince = Annotated[
    Instant | None,
    Query(description="Only leads changed at or after this instant (with its offset)."),
]
Search = Annotated[
    str | None, Query(max_length=100, pattern=NO_NUL, description="Part of name, email or company.")
]


@router.get("", response_model=PageOf[LeadOut], responses=problems(400))
async def list_leads(
    context: LeadRows,
    vendor_id: uuid.UUID | None = None,
    status: LeadStatus | None = None,
    updated_since: UpdatedSince = None,
    q: Search = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_LIMIT,
) -> Response:
    """Leads, newest first, in stable pages. A vendor key sees its own leads in every workspace
    that actively links it. The vendor's raw payload is in the single-lead view."""
    page = await leads.list_leads(
        context.tx,
        principal=context.principal,
        filters=LeadFilters(vendor_id=vendor_id, status=status, updated_since=updated_since, q=q),
        cursor=cursor,
        limit=limit,
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
    if_match: Annotated[
        str | SkipJsonSchema[None],
        Header(
            description='The lead\'s ETag, e.g. `"3"`, or `*`.',
            json_schema_extra={"pattern": IF_MATCH},
        ),
    ] = None,
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
