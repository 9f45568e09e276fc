"""Isolation cases for the vendor content endpoints: campaigns, price items (and their
comparison), assets. Registered in the shared case registry; test_isolation_endpoints.py
imports this module, runs every case and checks every OpenAPI operation has one."""

from __future__ import annotations

import asyncpg

from tests.isolation_world import World, case, fetch

CONTENT = {
    "/v1/campaigns": "C-{marker}",
    "/v1/price-items": "SKU-{marker}",
    "/v1/assets": "A-{marker}",
}


async def _external_ids(w: World, who: str, url: str) -> set[str]:
    body = (await fetch(w, who, url)).json()
    assert body["next_cursor"] is None
    return {item["external_id"] if "external_id" in item else item["sku"] for item in body["items"]}


def _content_case(path: str) -> None:
    @case("GET", path)
    async def run(w: World, db: asyncpg.Connection) -> None:
        mine = {CONTENT[path].format(marker=w.a.marker)}
        for who in ("owner", "key", "vendor"):
            # A's owner and key see A's; the vendor A links sees its own rows in A only.
            assert await _external_ids(w, who, f"{path}?limit=200") == mine
            assert await _external_ids(w, who, f"{path}?vendor_id={w.v2}") == set()


for _path in CONTENT:
    _content_case(_path)


@case("GET", "/v1/price-items/compare")
async def _compare(w: World, db: asyncpg.Connection) -> None:
    for who in ("owner", "key", "vendor"):
        theirs = await fetch(w, who, f"/v1/price-items/compare?sku=SKU-{w.b.marker}")
        assert theirs.json()["items"] == []
        ours = await fetch(w, who, f"/v1/price-items/compare?sku=SKU-{w.a.marker}")
        assert [item["vendor_id"] for item in ours.json()["items"]] == [str(w.v1)]
        assert await _external_ids(w, who, f"/v1/price-items?sku=SKU-{w.b.marker}") == set()
