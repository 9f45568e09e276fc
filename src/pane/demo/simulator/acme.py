"""Acme Networks: OAuth2 client credentials; camelCase JSON behind opaque cursor tokens.

Leads page by keyset (the cursor names the last change served), so leads that move while a
sync pages through them are neither skipped nor served twice within one pass.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pane.demo.simulator.common import (
    decode_cursor,
    encode_cursor,
    iso,
    json_response,
    offset_page,
    page_size,
    problem,
)
from pane.demo.simulator.store import Asset, Lead, PriceLine, VendorData, price_list

ACME_STATUS = ["Open", "Qualified", "Unqualified", "Closed"]
ACME_ASSET_TYPE = {"datasheet": "DATASHEET", "presentation": "PRESENTATION", "video": "VIDEO"}
ACME_LOCALE = {"en": "en-US", "de": "de-DE"}


class AcmeNetworks:
    """OAuth2 client credentials; cursor-token pages of camelCase leads, campaigns, a JSON
    price list (USD or EUR) and collateral."""

    slug = "acme"

    def __init__(self, data: VendorData, client_id: str, client_secret: str) -> None:
        self.data = data
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: set[str] = set()
        self.token_requests = 0

    async def token(self, request: Request) -> Response:
        form = await request.form()
        self.token_requests += 1
        if form.get("grant_type") != "client_credentials":
            return problem(400, "unsupported_grant_type")
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = secrets.token_urlsafe(24)
        self.tokens.add(token)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token in self.tokens

    @staticmethod
    def lead_json(lead: Lead) -> dict[str, Any]:
        return {
            "leadId": lead.id,
            "firstName": lead.first_name,
            "lastName": lead.last_name,
            "emailAddress": lead.email,
            "phoneNumber": lead.phone,
            "companyName": lead.company,
            "jobTitle": lead.title,
            "countryCode": lead.country,
            "status": ACME_STATUS[lead.status],
            "score": lead.score,
            "campaignId": lead.campaign,
            "createdAt": iso(lead.created_at),
            "updatedAt": iso(lead.updated_at),
            "isDeleted": lead.deleted,
        }

    async def leads(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        since_text = request.query_params.get("updatedSince")
        token = request.query_params.get("cursor")
        try:
            since = datetime.fromisoformat(since_text) if since_text else None
            if since is not None and since.tzinfo is None:
                since = since.replace(tzinfo=UTC)
            start = self.data.first_changed_at_or_after(since)
            if token:
                stamp, _, lead_id = decode_cursor(token).partition("|")
                start = max(start, self.data.first_after(datetime.fromisoformat(stamp), lead_id))
        except ValueError:
            return problem(400, "bad updatedSince or cursor")
        ordered = self.data.by_change()
        size = page_size(request, "limit")
        page = ordered[start : start + size]
        cursor = None
        if page and start + size < len(ordered):
            cursor = encode_cursor(f"{page[-1].updated_at.isoformat()}|{page[-1].id}")
        return json_response({"data": [self.lead_json(x) for x in page], "nextCursor": cursor})

    async def campaigns(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return json_response(
            {
                "data": [
                    {
                        "campaignId": c.id,
                        "title": c.name,
                        "channel": c.kind,
                        "summary": c.description,
                        "startDate": c.starts.date().isoformat(),
                        "endDate": c.ends.date().isoformat(),
                        "skus": c.products,
                        "updatedAt": iso(c.updated_at),
                    }
                    for c in self.data.campaigns
                ],
                "nextCursor": None,
            }
        )

    @staticmethod
    def _price(line: PriceLine) -> dict[str, Any]:
        return {
            "sku": line.sku,
            "productName": line.name,
            "listPrice": {"amount": float(line.list_price), "currency": line.currency},
            "partnerCost": {"amount": float(line.partner_cost), "currency": line.currency},
            "validFrom": line.valid_from.date().isoformat(),
        }

    async def price_list(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        try:
            lines = price_list(request.query_params.get("currency", "USD"))
            chunk, cursor = offset_page(lines, request, page_size(request, "limit"))
        except ValueError:
            return problem(400, "currency must be USD or EUR; cursor one of ours")
        return json_response({"data": [self._price(x) for x in chunk], "nextCursor": cursor})

    @staticmethod
    def _asset(asset: Asset) -> dict[str, Any]:
        return {
            "assetId": asset.id,
            "title": asset.title,
            "assetType": ACME_ASSET_TYPE[asset.kind],
            "url": f"https://cdn.acme.example/{asset.path}",
            "locale": ACME_LOCALE[asset.language],
            "productSku": asset.product,
            "updatedAt": iso(asset.updated_at),
        }

    async def assets(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        try:
            chunk, cursor = offset_page(self.data.assets, request, page_size(request, "limit"))
        except ValueError:
            return problem(400, "bad cursor")
        return json_response({"data": [self._asset(x) for x in chunk], "nextCursor": cursor})

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/api/v2/leads", self.leads),
            Route("/api/v2/campaigns", self.campaigns),
            Route("/api/v2/price-list", self.price_list),
            Route("/api/v2/assets", self.assets),
        ]
