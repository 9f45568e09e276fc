"""Initech Cloud: HTTP basic auth; offset pages chained by ``Link: rel="next"`` headers;
nested records with epoch-second timestamps. Flaky on request: 429 with Retry-After, 500s,
slow answers."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pane.demo.simulator.common import epoch, json_response, page_size, problem
from pane.demo.simulator.store import Campaign, Lead, VendorData

T = TypeVar("T")
INITECH_STAGE = ["new", "working", "won", "lost"]


def _linked(
    items: list[T], start: int, request: Request, offset: int
) -> tuple[list[T], dict[str, str]]:
    """``items[start + offset:]``'s first page, and a Link header to the next one if any."""
    size = page_size(request, "limit", 50)
    first = start + offset
    headers = {}
    if first + size < len(items):
        following = request.url.include_query_params(offset=offset + size, limit=size)
        headers["Link"] = f'<{following}>; rel="next"'
    return items[first : first + size], headers


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
    def lead_json(lead: Lead) -> dict[str, Any]:
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
            "ts": {"created": epoch(lead.created_at), "updated": epoch(lead.updated_at)},
            "removed": lead.deleted,
        }

    @staticmethod
    def _campaign(campaign: Campaign) -> dict[str, Any]:
        return {
            "id": campaign.id,
            "meta": {
                "title": campaign.name,
                "channel": campaign.kind,
                "about": campaign.description,
            },
            "window": {"from": epoch(campaign.starts), "to": epoch(campaign.ends)},
            "products": [{"sku": sku} for sku in campaign.products],
            "ts": {"updated": epoch(campaign.updated_at)},
        }

    async def _refused(self, request: Request) -> Response | None:
        """Basic auth, then the flakiness this vendor was asked for."""
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {expected}":
            return problem(401, "authentication required", {"WWW-Authenticate": "Basic"})
        self.requests += 1
        if self.throttle_every and self.requests % self.throttle_every == 0:
            return problem(429, "slow down", {"Retry-After": "1"})
        if self.fail_every and self.requests % self.fail_every == 0:
            return problem(500, "internal error, try again")
        if self.slow_seconds:
            await asyncio.sleep(self.slow_seconds)
        return None

    async def leads(self, request: Request) -> Response:
        if refused := await self._refused(request):
            return refused
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
            since_epoch = request.query_params.get("since")
            since = datetime.fromtimestamp(int(since_epoch), UTC) if since_epoch else None
        except ValueError:
            return problem(400, "offset and since are integers")
        start = self.data.first_changed_at_or_after(since)
        chunk, headers = _linked(self.data.by_change(), start, request, offset)
        return json_response([self.lead_json(x) for x in chunk], headers=headers)

    async def campaigns(self, request: Request) -> Response:
        if refused := await self._refused(request):
            return refused
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError:
            return problem(400, "offset is an integer")
        chunk, headers = _linked(self.data.campaigns, 0, request, offset)
        return json_response([self._campaign(x) for x in chunk], headers=headers)

    def routes(self) -> list[Route]:
        return [
            Route("/partner/leads", self.leads),
            Route("/partner/campaigns", self.campaigns),
        ]
