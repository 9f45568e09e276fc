"""Globex Security: an API key in a header; numbered pages of snake_case records with
European dates (``DD/MM/YYYY HH:MM``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pane.demo.simulator.common import json_response, page_size, problem
from pane.demo.simulator.store import Asset, Campaign, Lead, VendorData

T = TypeVar("T")
GLOBEX_STATUS = ["Unassigned", "Pending", "Accepted", "Rejected"]
GLOBEX_ASSET_TYPE = {"datasheet": "Data sheet", "presentation": "Slide deck", "video": "Video"}


def _page_of(
    request: Request, items: list[T], render: Callable[[T], dict[str, Any]], start: int = 0
) -> Response:
    """Page ``page`` (``per_page`` long) of ``items[start:]``, without copying the rest."""
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        return problem(400, "page must be a number")
    size = page_size(request, "per_page", 50)
    total_pages = max(1, -(-(len(items) - start) // size))
    first = start + (page - 1) * size
    chunk = items[first : first + size]
    return json_response(
        {"results": [render(item) for item in chunk], "page": page, "total_pages": total_pages}
    )


class GlobexSecurity:
    """API key in a header; numbered pages of snake_case leads, campaigns and collateral."""

    slug = "globex"
    DATE = "%d/%m/%Y %H:%M"
    DAY = "%d/%m/%Y"

    def __init__(self, data: VendorData, api_key: str) -> None:
        self.data = data
        self.api_key = api_key

    def lead_json(self, lead: Lead) -> dict[str, Any]:
        return {
            "lead_ref": lead.id,
            "first_name": lead.first_name,
            "surname": lead.last_name,
            "contact_email": lead.email,
            "telephone": lead.phone,
            "org": lead.company,
            "position": lead.title,
            "country": lead.country,
            "lead_status": GLOBEX_STATUS[lead.status],
            "rating": lead.score,
            "created": lead.created_at.strftime(self.DATE),
            "modified": lead.updated_at.strftime(self.DATE),
            "archived": lead.deleted,
        }

    def _refused(self, request: Request) -> Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return problem(403, "API key missing or not valid")
        return None

    async def leads(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        modified_after = request.query_params.get("modified_after")
        try:
            since = (
                datetime.strptime(modified_after, self.DATE).replace(tzinfo=UTC)
                if modified_after
                else None
            )
        except ValueError:
            return problem(400, "modified_after must be DD/MM/YYYY HH:MM")
        start = self.data.first_changed_at_or_after(since)
        return _page_of(request, self.data.by_change(), self.lead_json, start)

    def _state(self, campaign: Campaign) -> str:
        if campaign.starts > self.data.clock:
            return "planned"
        return "ended" if campaign.ends < self.data.clock else "live"

    def _campaign(self, campaign: Campaign) -> dict[str, Any]:
        return {
            "campaign_ref": campaign.id,
            "campaign_name": campaign.name,
            "campaign_type": campaign.kind.upper(),
            "blurb": campaign.description,
            "start_date": campaign.starts.strftime(self.DAY),
            "end_date": campaign.ends.strftime(self.DAY),
            "product_codes": campaign.products,
            "state": self._state(campaign),
            "modified": campaign.updated_at.strftime(self.DATE),
        }

    async def campaigns(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        return _page_of(request, self.data.campaigns, self._campaign)

    def _asset(self, asset: Asset) -> dict[str, Any]:
        return {
            "asset_ref": asset.id,
            "asset_title": asset.title,
            "asset_type": GLOBEX_ASSET_TYPE[asset.kind],
            "download_url": f"https://partners.globex.example/files/{asset.path}",
            "lang": asset.language.upper(),
            "product_code": asset.product,
            "modified": asset.updated_at.strftime(self.DATE),
        }

    async def assets(self, request: Request) -> Response:
        if refused := self._refused(request):
            return refused
        return _page_of(request, self.data.assets, self._asset)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/leads", self.leads),
            Route("/v1/campaigns", self.campaigns),
            Route("/v1/assets", self.assets),
        ]
