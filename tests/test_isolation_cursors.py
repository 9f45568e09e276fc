"""Tenant isolation in pagination: a cursor taken from another workspace's list, or forged to
point into it, shows workspace A's owner, API key and vendor key nothing of workspace B, and a
cursor of another list or garbage is refused rather than reinterpreted.
"""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest

from pane.services.lists import encode_cursor
from tests.factories import Api
from tests.isolation_world import World, build_world, fetch, listed_ids


@pytest.fixture(scope="module")
async def world(api: Api, http: httpx.AsyncClient) -> World:
    return await build_world(api, http)


# --------------------------------------------------------------------------------------------
# Cursors


def _forge(kind: str, value: uuid.UUID) -> str:
    return encode_cursor(kind, [value])


async def test_forged_and_foreign_cursors_reveal_nothing_of_another_workspace(
    world: World,
) -> None:
    w = world
    b_leads = {*w.b.lead_ids, *w.b.stray_lead_ids}
    # B's own cursor, taken from B's first page.
    response = await w.http.get("/v1/leads?limit=1", headers=w.b.owner.headers)
    page = response.json()
    assert page["next_cursor"], "B has more than one lead"
    foreign = page["next_cursor"]
    top = uuid.UUID(int=(1 << 128) - 1)
    cursors = [
        foreign,
        _forge("leads", top),
        _forge("leads", max(b_leads)),
        _forge("leads", uuid.UUID(int=0)),
    ]
    for who in ("owner", "key", "vendor"):
        visible = set(w.a.lead_ids)
        for cursor in cursors:
            seen = await listed_ids(w, who, f"/v1/leads?limit=200&cursor={cursor}")
            assert seen <= visible, (who, cursor)
        # Paging all the way with A's own cursors never crosses into B.
        collected: set[uuid.UUID] = set()
        cursor = None
        while True:
            url = "/v1/leads?limit=1" + (f"&cursor={cursor}" if cursor else "")
            body = (await fetch(w, who, url)).json()
            collected |= {uuid.UUID(item["id"]) for item in body["items"]}
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert collected == visible
        links_after_nothing = await listed_ids(
            w, who, f"/v1/links?limit=200&cursor={_forge('links', uuid.UUID(int=0))}"
        )
        assert w.b.link_id not in links_after_nothing
        # A cursor of another list, or garbage, is refused rather than reinterpreted.
        for bad in (_forge("links", top), base64.urlsafe_b64encode(b"{}").decode(), "x" * 40):
            await fetch(w, who, f"/v1/leads?cursor={bad}", 400)
