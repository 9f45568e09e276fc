"""Deal Desk's API as its reference describes it, answered by respx: a bearer API key, the
partner resource, and the partner's deals in change order (``updated_at``, then ``id``),
``updated_since`` inclusive, at most ``limit`` a page behind an opaque ``next_page_token``."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

import httpx
import respx

BASE_URL = "https://api.dealdesk.example/v1"


def _changed(deal: dict[str, Any]) -> tuple[datetime, str]:
    return datetime.fromisoformat(deal["updated_at"]), deal["id"]


class DealDeskApi:
    def __init__(self, deals: list[dict[str, Any]], *, api_key: str, partner_id: str) -> None:
        self.deals = sorted(deals, key=_changed)
        self.api_key = api_key
        self.partner_id = partner_id
        self.router = respx.Router()
        partner = rf"{re.escape(BASE_URL)}/partners/(?P<partner>[^/]+)"
        self.router.get(url__regex=rf"^{partner}$").mock(side_effect=self._partner)
        self.router.get(url__regex=rf"^{partner}/deals(\?.*)?$").mock(side_effect=self._deals)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.router.async_handler)

    def _refused(self, request: httpx.Request, partner: str) -> httpx.Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return httpx.Response(401, json={"message": "invalid API key"})
        if partner != self.partner_id:
            return httpx.Response(404, json={"message": f"no partner {partner}"})
        return None

    def _partner(self, request: httpx.Request, partner: str) -> httpx.Response:
        if refused := self._refused(request, partner):
            return refused
        return httpx.Response(200, json={"id": partner, "name": "Nordlicht IT"})

    def _deals(self, request: httpx.Request, partner: str) -> httpx.Response:
        if refused := self._refused(request, partner):
            return refused
        params = request.url.params
        deals = self.deals
        if since := params.get("updated_since"):
            deals = [d for d in deals if _changed(d)[0] >= datetime.fromisoformat(since)]
        token = params.get("page_token")
        start = int(base64.urlsafe_b64decode(token)) if token else 0
        limit = int(params.get("limit", 50))
        more = start + limit < len(deals)
        following = base64.urlsafe_b64encode(str(start + limit).encode()).decode()
        return httpx.Response(
            200,
            json={
                "deals": deals[start : start + limit],
                "next_page_token": following if more else None,
            },
        )
