"""Northwind Distribution: a distributor's price list, one CSV file, `;`-separated, decimal
comma, a token in the query."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pane.demo.simulator.store import PRODUCTS


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
