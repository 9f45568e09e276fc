"""Isolation cases for the change feed and its stream. Registered in the shared case registry;
test_isolation_endpoints.py imports this module. What a stream delivers once open is tested
against a real server in test_changes_stream.py; here, the refusals (they come before any
event is sent)."""

from __future__ import annotations

import asyncpg

from tests.isolation_world import World, attempt, case, fetch


async def _feed(w: World, who: str, query: str = "") -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    after = 0
    while True:
        body = (await fetch(w, who, f"/v1/changes?after={after}&limit=1000{query}")).json()
        items += body["items"]
        after = body["next_after"]
        if not body["has_more"]:
            return items


@case("GET", "/v1/changes")
async def _changes(w: World, db: asyncpg.Connection) -> None:
    theirs = {
        str(row["id"])
        for row in await db.fetch("SELECT id FROM events WHERE workspace_id = $1", w.b.workspace_id)
    }
    assert theirs
    for who in ("owner", "key"):
        items = await _feed(w, who)
        assert items
        assert {item["workspace_id"] for item in items} == {str(w.a.workspace_id)}
        assert not theirs & {str(item["id"]) for item in items}
        await attempt(w, who, "GET", "/v1/changes?workspace_id={ws}", {"ws": w.b.workspace_id}, 404)
    # V1 reads A (which links it), only events of its own vendor; never B, which holds V1's
    # leads but never linked V1.
    await fetch(w, "vendor", "/v1/changes", 422)
    items = await _feed(w, "vendor", f"&workspace_id={w.a.workspace_id}")
    assert items
    assert {item["vendor_id"] for item in items} == {str(w.v1)}
    await attempt(
        w, "vendor", "GET", "/v1/changes?workspace_id={ws}", {"ws": w.b.workspace_id}, 404
    )


@case("GET", "/v1/changes/stream")
async def _stream(w: World, db: asyncpg.Connection) -> None:
    for who in ("owner", "key"):
        await attempt(
            w, who, "GET", "/v1/changes/stream?workspace_id={ws}", {"ws": w.b.workspace_id}, 404
        )
    await fetch(w, "vendor", "/v1/changes/stream", 422)
    await attempt(
        w,
        "vendor",
        "GET",
        "/v1/changes/stream?workspace_id={ws}",
        {"ws": w.b.workspace_id},
        404,
    )
    # B's key cannot stream A's changes either.
    await attempt(
        w,
        "B's key",
        "GET",
        "/v1/changes/stream?workspace_id={ws}",
        {"ws": w.a.workspace_id},
        404,
        headers={"Authorization": f"Bearer {w.b.key}"},
    )
