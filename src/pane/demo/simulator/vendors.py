"""Four fictional vendors that differ the way real partner APIs do.

| vendor | auth | pagination | shape |
|---|---|---|---|
| Acme Networks | OAuth2 client credentials | opaque cursor token | camelCase, ISO 8601 |
| Globex Security | API key header | page number | snake_case, `DD/MM/YYYY HH:MM` |
| Initech Cloud | HTTP basic | offset + `Link: rel="next"` | nested objects, epoch seconds; flaky |
| Northwind Distribution | token in query | one CSV file | `;`-separated, decimal comma |
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pane.demo.simulator.store import PRODUCTS, Lead, VendorData

ACME_STATUS = ["Open", "Qualified", "Unqualified", "Closed"]
GLOBEX_STATUS = ["Unassigned", "Pending", "Accepted", "Rejected"]
INITECH_STAGE = ["new", "working", "won", "lost"]


def _problem(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _page_size(request: Request, name: str, default: int = 100) -> int:
    try:
        return max(1, min(int(request.query_params.get(name, default)), 500))
    except ValueError:
        return default


class AcmeNetworks:
    """OAuth2 client credentials; cursor-token pages of camelCase leads."""

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
            return _problem(400, "unsupported_grant_type")
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
    def _lead(lead: Lead) -> dict[str, Any]:
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
            "createdAt": _iso(lead.created_at),
            "updatedAt": _iso(lead.updated_at),
            "isDeleted": lead.deleted,
        }

    async def leads(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        since_text = request.query_params.get("updatedSince")
        try:
            since = datetime.fromisoformat(since_text) if since_text else None
            start = int(base64.urlsafe_b64decode(request.query_params["cursor"]))
        except KeyError:
            start = 0
        except (ValueError, binascii.Error):
            return _problem(400, "bad updatedSince or cursor")
        changed = self.data.changed_since(since)
        size = _page_size(request, "limit")
        page = changed[start : start + size]
        more = start + size < len(changed)
        cursor = base64.urlsafe_b64encode(str(start + size).encode()).decode() if more else None
        return JSONResponse({"data": [self._lead(x) for x in page], "nextCursor": cursor})

    async def campaigns(self, request: Request) -> Response:
        if not self._authorized(request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse(
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
                        "updatedAt": _iso(c.updated_at),
                    }
                    for c in self.data.campaigns
                ],
                "nextCursor": None,
            }
        )

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/api/v2/leads", self.leads),
            Route("/api/v2/campaigns", self.campaigns),
        ]


class GlobexSecurity:
    """API key in a header; numbered pages of snake_case leads with European dates."""

    slug = "globex"
    DATE = "%d/%m/%Y %H:%M"

    def __init__(self, data: VendorData, api_key: str) -> None:
        self.data = data
        self.api_key = api_key

    def _lead(self, lead: Lead) -> dict[str, Any]:
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

    async def leads(self, request: Request) -> Response:
        if request.headers.get("x-api-key") != self.api_key:
            return _problem(403, "API key missing or not valid")
        modified_after = request.query_params.get("modified_after")
        try:
            since = (
                datetime.strptime(modified_after, self.DATE).replace(tzinfo=UTC)
                if modified_after
                else None
            )
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            return _problem(400, "modified_after must be DD/MM/YYYY HH:MM; page a number")
        changed = self.data.changed_since(since)
        size = _page_size(request, "per_page", 50)
        total_pages = max(1, -(-len(changed) // size))
        chunk = changed[(page - 1) * size : page * size]
        return JSONResponse(
            {
                "results": [self._lead(x) for x in chunk],
                "page": page,
                "total_pages": total_pages,
            }
        )

    def routes(self) -> list[Route]:
        return [Route("/v1/leads", self.leads)]


class InitechCloud:
    """HTTP basic auth; offset pages linked by `Link` headers; nested records; flaky."""

    slug = "initech"

    def __init__(
        self,
        data: VendorData,
        username: str,
        password: str,
        *,
        throttle_every: int = 0,
        fail_every: int = 0,
        slow_seconds: float = 0.0,
    ) -> None:
        self.data = data
        self.username = username
        self.password = password
        self.throttle_every = throttle_every
        self.fail_every = fail_every
        self.slow_seconds = slow_seconds
        self.requests = 0

    @staticmethod
    def _lead(lead: Lead) -> dict[str, Any]:
        return {
            "uid": lead.id,
            "contact": {
                "name": {"given": lead.first_name, "family": lead.last_name},
                "email": lead.email,
                "phone": lead.phone,
                "role": lead.title,
            },
            "account": {"name": lead.company, "country": lead.country},
            "stage": INITECH_STAGE[lead.status],
            "points": lead.score,
            "ts": {
                "created": int(lead.created_at.timestamp()),
                "updated": int(lead.updated_at.timestamp()),
            },
            "removed": lead.deleted,
        }

    async def leads(self, request: Request) -> Response:
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return _problem(401, "authentication required", {"WWW-Authenticate": "Basic"})
        self.requests += 1
        if self.throttle_every and self.requests % self.throttle_every == 0:
            return _problem(429, "slow down", {"Retry-After": "1"})
        if self.fail_every and self.requests % self.fail_every == 0:
            return _problem(500, "internal error, try again")
        if self.slow_seconds:
            await asyncio.sleep(self.slow_seconds)
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
            since_epoch = request.query_params.get("since")
            since = datetime.fromtimestamp(int(since_epoch), UTC) if since_epoch else None
        except ValueError:
            return _problem(400, "offset and since are integers")
        changed = self.data.changed_since(since)
        size = _page_size(request, "limit", 50)
        chunk = changed[offset : offset + size]
        headers = {}
        if offset + size < len(changed):
            following = request.url.include_query_params(offset=offset + size, limit=size)
            headers["Link"] = f'<{following}>; rel="next"'
        return JSONResponse([self._lead(x) for x in chunk], headers=headers)

    def routes(self) -> list[Route]:
        return [Route("/partner/leads", self.leads)]


class NorthwindDistribution:
    """A distributor's price list: one CSV file, `;`-separated, decimal comma."""

    slug = "northwind"

    def __init__(self, token: str) -> None:
        self.token = token

    async def price_list(self, request: Request) -> Response:
        if request.query_params.get("token") != self.token:
            return PlainTextResponse("forbidden", status_code=403)
        lines = ["Artikelnummer;Bezeichnung;Waehrung;UVP;Haendlerpreis;Gueltig ab"]
        for sku, name, list_price in PRODUCTS:
            cost = (list_price * 78 / 100).quantize(list_price)
            lines.append(f"{sku};{name};EUR;{_comma(list_price)};{_comma(cost)};01.01.2026")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/csv")

    def routes(self) -> list[Route]:
        return [Route("/pricelist.csv", self.price_list)]


def _comma(amount: Any) -> str:
    return f"{amount:,.2f}".replace(",", "X").replace(".", ",").replace("X", ".")
