"""Leads: the list (order, filters, search, limits, cursors, paging under concurrent inserts),
the detail view, and guarded updates with their change events."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from pane.ids import new_id
from pane.services.leads import LIST_COLUMNS
from tests.factories import assert_problem, error_fields


async def linked_workspace(api, count: int = 0, **fields: Any):
    owner = await api.signup()
    vendor = await api.new_vendor()
    await api.link(owner, vendor)
    ids = await api.seed_leads(owner.workspace_id, vendor, count, **fields) if count else []
    return owner, vendor, ids


async def list_ids(http, owner, **params: Any) -> list[str]:
    response = await http.get("/v1/leads", params=params, headers=owner.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None, "expected a single page"
    return [item["id"] for item in body["items"]]


async def walk(http, owner, limit: int, **params: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        query = {**params, "limit": limit}
        if cursor is not None:
            query["cursor"] = cursor
        response = await http.get("/v1/leads", params=query, headers=owner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000


def newest_first(ids: list[uuid.UUID]) -> list[str]:
    return [str(i) for i in sorted(ids, reverse=True)]


async def get_lead(http, owner, lead_id) -> httpx.Response:
    response = await http.get(f"/v1/leads/{lead_id}", headers=owner.headers)
    assert response.status_code == 200, response.text
    return response


async def events(admin_db, workspace_id) -> list[Any]:
    return list(
        await admin_db.fetch(
            "SELECT seq, type, entity_id, vendor_id, actor_type, actor_id,"
            " document -> 'data' AS data"
            " FROM events WHERE workspace_id = $1 ORDER BY seq",
            workspace_id,
        )
    )


def event_data(row: Any) -> dict[str, Any]:
    data = row["data"]
    return dict(json.loads(data) if isinstance(data, str) else data)


def forged_cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
async def shared(api):
    """A workspace for tests that only read, or that seed leads of their own."""
    return await linked_workspace(api, 2)


# --- list -------------------------------------------------------------------------------------


async def test_list_is_newest_first_and_scoped_to_the_workspace(api, http):
    owner, vendor, ids = await linked_workspace(api, 5)
    later = await api.seed_leads(owner.workspace_id, vendor, 2)
    other, _, other_ids = await linked_workspace(api, 3)

    assert await list_ids(http, owner) == newest_first(ids + later)
    assert (await list_ids(http, owner))[:2] == [str(later[1]), str(later[0])]
    assert await list_ids(http, other) == newest_first(other_ids)


async def test_list_items_have_no_raw_but_every_list_column(api, http):
    owner, _, _ = await linked_workspace(api, 2)
    response = await http.get("/v1/leads", headers=owner.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    items = response.json()["items"]
    assert len(items) == 2
    for item in items:
        assert "raw" not in item
        assert "deleted_at" not in item
        assert set(item) == set(LIST_COLUMNS)
        assert item["workspace_id"] == str(owner.workspace_id)
        assert item["status"] == "new"
        assert item["version"] == 1


async def test_empty_workspace_lists_nothing(api, http):
    owner, _, _ = await linked_workspace(api)
    response = await http.get("/v1/leads", headers=owner.headers)
    assert response.status_code == 200
    assert response.json() == {"items": [], "next_cursor": None}


async def test_soft_deleted_leads_are_not_listed_nor_readable(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 3)
    await admin_db.execute(
        "UPDATE leads SET deleted_at = now() WHERE workspace_id = $1 AND id = $2",
        owner.workspace_id,
        ids[1],
    )
    assert await list_ids(http, owner) == newest_first([ids[0], ids[2]])
    response = await http.get(f"/v1/leads/{ids[1]}", headers=owner.headers)
    assert_problem(response, 404, "not-found")


async def test_filter_by_vendor(api, http):
    owner, vendor_a, a_ids = await linked_workspace(api, 2)
    vendor_b = await api.new_vendor()
    await api.link(owner, vendor_b)
    b_ids = await api.seed_leads(owner.workspace_id, vendor_b, 3)

    assert await list_ids(http, owner, vendor_id=str(vendor_a)) == newest_first(a_ids)
    assert await list_ids(http, owner, vendor_id=str(vendor_b)) == newest_first(b_ids)
    assert await list_ids(http, owner, vendor_id=str(uuid.uuid4())) == []
    assert await list_ids(http, owner) == newest_first(a_ids + b_ids)


async def test_filter_by_status(api, http):
    owner, vendor, new_ids = await linked_workspace(api, 2)
    accepted = await api.seed_leads(owner.workspace_id, vendor, 3, status="accepted")
    lost = await api.seed_leads(owner.workspace_id, vendor, 1, status="lost")

    assert await list_ids(http, owner, status="accepted") == newest_first(accepted)
    assert await list_ids(http, owner, status="new") == newest_first(new_ids)
    assert await list_ids(http, owner, status="lost") == newest_first(lost)
    assert await list_ids(http, owner, status="converted") == []
    response = await http.get("/v1/leads", params={"status": "won"}, headers=owner.headers)
    assert error_fields(assert_problem(response, 422, "validation-error")) == ["query.status"]


async def test_filter_combines_vendor_and_status(api, http):
    owner, vendor_a, _ = await linked_workspace(api, 2)
    a_accepted = await api.seed_leads(owner.workspace_id, vendor_a, 2, status="accepted")
    vendor_b = await api.new_vendor()
    await api.link(owner, vendor_b)
    await api.seed_leads(owner.workspace_id, vendor_b, 2, status="accepted")
    ids = await list_ids(http, owner, vendor_id=str(vendor_a), status="accepted")
    assert ids == newest_first(a_accepted)


async def test_filter_updated_since_is_inclusive_and_timezone_aware(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 4)
    base = datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
    for hours, lead_id in enumerate(ids):
        await admin_db.execute(
            "UPDATE leads SET updated_at = $3 WHERE workspace_id = $1 AND id = $2",
            owner.workspace_id,
            lead_id,
            base + timedelta(hours=hours),
        )
    boundary = base + timedelta(hours=2)
    assert await list_ids(http, owner, updated_since=boundary.isoformat()) == newest_first(ids[2:])
    # The same instant written in another zone selects the same rows.
    berlin = boundary.astimezone(timezone(timedelta(hours=2)))
    assert await list_ids(http, owner, updated_since=berlin.isoformat()) == newest_first(ids[2:])
    just_after = (boundary + timedelta(microseconds=1)).isoformat()
    assert await list_ids(http, owner, updated_since=just_after) == newest_first(ids[3:])
    assert await list_ids(http, owner, updated_since="2040-01-01T00:00:00Z") == []


async def test_updated_since_sees_a_patched_lead(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 3)
    await admin_db.execute(
        "UPDATE leads SET updated_at = '2020-01-01T00:00:00Z' WHERE workspace_id = $1",
        owner.workspace_id,
    )
    since = datetime(2021, 1, 1, tzinfo=UTC).isoformat()
    assert await list_ids(http, owner, updated_since=since) == []
    response = await http.patch(
        f"/v1/leads/{ids[1]}", json={"notes": "called"}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert await list_ids(http, owner, updated_since=since) == [str(ids[1])]


async def _set_contact(admin_db, workspace_id, lead_id, **values: str | None) -> None:
    assignments = ", ".join(f"{column} = ${n}" for n, column in enumerate(values, start=3))
    await admin_db.execute(
        f"UPDATE leads SET {assignments} WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        lead_id,
        *values.values(),
    )


async def test_search_matches_name_email_company_case_insensitively(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 5)
    ws = owner.workspace_id
    await _set_contact(admin_db, ws, ids[0], first_name="Zelda", last_name="Quartermain")
    await _set_contact(admin_db, ws, ids[1], email="ops@Wombat-Systems.example")
    await _set_contact(admin_db, ws, ids[2], company="Acme Brandschutz AG")
    await _set_contact(admin_db, ws, ids[3], first_name=None, last_name=None, email=None)
    await _set_contact(admin_db, ws, ids[4], company="Yak Shaving Ltd")

    assert await list_ids(http, owner, q="zELDa") == [str(ids[0])]
    assert await list_ids(http, owner, q="quarterMAIN") == [str(ids[0])]
    assert await list_ids(http, owner, q="zelda quarter") == [str(ids[0])]
    assert await list_ids(http, owner, q="WOMBAT-systems") == [str(ids[1])]
    assert await list_ids(http, owner, q="brandschutz") == [str(ids[2])]
    assert await list_ids(http, owner, q="no such person") == []
    # A lead with no name or email is still found by its company.
    assert await list_ids(http, owner, q="customer gmbh") == newest_first([ids[0], ids[1], ids[3]])
    assert await list_ids(http, owner, q="LEAD5@Customer") == [str(ids[4])]
    assert await list_ids(http, owner, q="lead4@") == []
    assert await list_ids(http, owner, q="") == newest_first(ids)


async def test_search_treats_like_wildcards_literally(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 5)
    ws = owner.workspace_id
    await _set_contact(admin_db, ws, ids[0], company="Growth 100% GmbH")
    await _set_contact(admin_db, ws, ids[1], company="Snake_Case Partners")
    await _set_contact(admin_db, ws, ids[2], company="Back\\slash KG")
    await _set_contact(admin_db, ws, ids[3], company="100x Growth GmbH")
    await _set_contact(admin_db, ws, ids[4], company="SnakeXCase Partners")

    assert await list_ids(http, owner, q="%") == [str(ids[0])]
    assert await list_ids(http, owner, q="100%") == [str(ids[0])]
    assert await list_ids(http, owner, q="_") == [str(ids[1])]
    assert await list_ids(http, owner, q="snake_case") == [str(ids[1])]
    assert await list_ids(http, owner, q="\\") == [str(ids[2])]
    assert await list_ids(http, owner, q="k\\s") == [str(ids[2])]
    assert await list_ids(http, owner, q="%_") == []


async def test_search_stays_in_the_workspace(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 1)
    other, _, other_ids = await linked_workspace(api, 1)
    token = f"needle{uuid.uuid4().hex[:8]}"
    await _set_contact(admin_db, owner.workspace_id, ids[0], company=token)
    await _set_contact(admin_db, other.workspace_id, other_ids[0], company=token)
    assert await list_ids(http, owner, q=token) == [str(ids[0])]
    assert await list_ids(http, other, q=token.upper()) == [str(other_ids[0])]


@pytest.mark.parametrize("limit", [0, 201, -5])
async def test_limit_out_of_bounds_is_422(http, shared, limit):
    owner, _, _ = shared
    response = await http.get("/v1/leads", params={"limit": limit}, headers=owner.headers)
    body = assert_problem(response, 422, "validation-error")
    assert error_fields(body) == ["query.limit"]
    assert "query.limit" in body["detail"]


async def test_limit_bounds_are_inclusive_and_default_is_50(api, http):
    owner, _, ids = await linked_workspace(api, 51)
    one = await http.get("/v1/leads", params={"limit": 1}, headers=owner.headers)
    assert one.status_code == 200
    assert [item["id"] for item in one.json()["items"]] == newest_first(ids)[:1]
    assert one.json()["next_cursor"]
    most = await http.get("/v1/leads", params={"limit": 200}, headers=owner.headers)
    assert most.status_code == 200
    assert [item["id"] for item in most.json()["items"]] == newest_first(ids)
    assert most.json()["next_cursor"] is None
    default = await http.get("/v1/leads", headers=owner.headers)
    assert len(default.json()["items"]) == 50
    assert default.json()["next_cursor"]


@pytest.mark.parametrize(("count", "limit"), [(7, 3), (6, 3), (5, 1), (4, 10)])
async def test_cursor_walks_every_row_exactly_once(api, http, count, limit):
    owner, _, ids = await linked_workspace(api, count)
    pages = await walk(http, owner, limit)
    flat = [lead_id for page in pages for lead_id in page]
    assert flat == newest_first(ids)
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit
    assert len(pages) == -(-count // limit)


async def test_cursor_keeps_the_filters(api, http):
    owner, vendor, _ = await linked_workspace(api, 3)
    accepted = await api.seed_leads(owner.workspace_id, vendor, 5, status="accepted")
    await api.seed_leads(owner.workspace_id, vendor, 2)
    pages = await walk(http, owner, 2, status="accepted")
    assert [lead_id for page in pages for lead_id in page] == newest_first(accepted)


async def test_cursor_from_another_list_is_refused(api, http):
    owner, _, _ = await linked_workspace(api, 3)
    await api.link(owner, await api.new_vendor())

    vendors_page = await http.get("/v1/vendors", params={"limit": 1}, headers=owner.headers)
    links_page = await http.get("/v1/links", params={"limit": 1}, headers=owner.headers)
    leads_page = await http.get("/v1/leads", params={"limit": 1}, headers=owner.headers)
    vendor_cursor = vendors_page.json()["next_cursor"]
    link_cursor = links_page.json()["next_cursor"]
    lead_cursor = leads_page.json()["next_cursor"]
    assert vendor_cursor
    assert link_cursor
    assert lead_cursor

    for cursor in (vendor_cursor, link_cursor):
        response = await http.get("/v1/leads", params={"cursor": cursor}, headers=owner.headers)
        assert_problem(response, 400, "bad-cursor")
    for path in ("/v1/vendors", "/v1/links"):
        response = await http.get(path, params={"cursor": lead_cursor}, headers=owner.headers)
        assert_problem(response, 400, "bad-cursor")
    # The genuine cursor still works.
    response = await http.get("/v1/leads", params={"cursor": lead_cursor}, headers=owner.headers)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "x",
        "e30",  # {}
        forged_cursor([1, 2]),
        forged_cursor({"k": "leads"}),
        forged_cursor({"k": "leads", "v": []}),
        forged_cursor({"k": "leads", "v": "0190e0e4-0000-7000-8000-000000000000"}),
        forged_cursor({"k": "leads", "v": ["not-a-uuid"]}),
        forged_cursor({"k": "leads", "v": [None]}),
        forged_cursor({"k": "leads", "v": [str(uuid.uuid4()), str(uuid.uuid4())]}),
        base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
        "ünïcödé",
    ],
)
async def test_garbage_cursor_is_400(http, shared, cursor):
    owner, _, _ = shared
    response = await http.get("/v1/leads", params={"cursor": cursor}, headers=owner.headers)
    body = assert_problem(response, 400, "bad-cursor")
    assert body["instance"] == "/v1/leads"


async def test_paging_while_leads_arrive(api, http, servers, admin_db):
    """A sync keeps inserting while a client pages: every row that existed before is seen
    exactly once, nothing twice."""
    owner, vendor, existing = await linked_workspace(api, 40)
    inserted: list[uuid.UUID] = []
    page_fetched = asyncio.Event()
    rows_inserted = asyncio.Event()
    done = False

    async def insert(count: int) -> None:
        ids = [new_id() for _ in range(count)]
        await admin_db.execute(
            "INSERT INTO leads (workspace_id, id, vendor_id, external_id, company, raw)"
            " SELECT $1, id, $2, 'late-' || id::text, 'Late Arrival', '{}'::jsonb"
            " FROM unnest($3::uuid[]) AS t(id)",
            owner.workspace_id,
            vendor,
            ids,
        )
        inserted.extend(ids)

    async def sync() -> None:
        while True:
            await page_fetched.wait()
            page_fetched.clear()
            if done:
                return
            await insert(3)
            rows_inserted.set()

    task = asyncio.create_task(sync())
    seen: list[str] = []
    pages = 0
    cursor = None
    try:
        while True:
            params: dict[str, Any] = {"limit": 4}
            if cursor:
                params["cursor"] = cursor
            response = await http.get("/v1/leads", params=params, headers=owner.headers)
            assert response.status_code == 200, response.text
            body = response.json()
            seen.extend(item["id"] for item in body["items"])
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
            page_fetched.set()
            await asyncio.wait_for(rows_inserted.wait(), timeout=10)
            rows_inserted.clear()
    finally:
        done = True
        page_fetched.set()
        await task

    assert pages == 10
    assert len(inserted) == 3 * (pages - 1), "the inserting task did not run between pages"
    assert len(seen) == len(set(seen)), "a lead was listed twice"
    expected = {str(i) for i in existing}
    assert expected <= set(seen)
    assert set(seen) <= expected | {str(i) for i in inserted}
    everything = await list_ids(http, owner, limit=200)
    assert set(everything) == expected | {str(i) for i in inserted}


# --- detail -----------------------------------------------------------------------------------


async def test_detail_has_raw_and_an_etag(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 2)
    await admin_db.execute(
        "UPDATE leads SET raw = $3::jsonb WHERE workspace_id = $1 AND id = $2",
        owner.workspace_id,
        ids[0],
        json.dumps({"origin": "vendor", "nested": {"score": 91, "tags": ["a", "b"]}}),
    )
    response = await get_lead(http, owner, ids[0])
    body = response.json()
    assert body["raw"] == {"origin": "vendor", "nested": {"score": 91, "tags": ["a", "b"]}}
    assert set(body) == {*LIST_COLUMNS, "raw"}
    assert body["id"] == str(ids[0])
    assert response.headers["etag"] == f'"{body["version"]}"'
    listed = next(
        item
        for item in (await http.get("/v1/leads", headers=owner.headers)).json()["items"]
        if item["id"] == str(ids[0])
    )
    assert {key: value for key, value in body.items() if key != "raw"} == listed


async def test_detail_of_another_workspace_or_missing_lead_is_404(api, http):
    owner, _, ids = await linked_workspace(api, 1)
    other, _, _ = await linked_workspace(api)
    response = await http.get(f"/v1/leads/{ids[0]}", headers=other.headers)
    assert_problem(response, 404, "not-found")
    response = await http.patch(
        f"/v1/leads/{ids[0]}", json={"notes": "mine now"}, headers=other.headers
    )
    assert_problem(response, 404, "not-found")
    response = await http.get(f"/v1/leads/{uuid.uuid4()}", headers=owner.headers)
    assert_problem(response, 404, "not-found")
    assert (await get_lead(http, owner, ids[0])).json()["notes"] is None


# --- updates ----------------------------------------------------------------------------------


async def test_patch_changes_status_notes_and_bumps_the_etag(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 1)
    lead_id = ids[0]
    before = await get_lead(http, owner, lead_id)
    etag = before.headers["etag"]

    response = await http.patch(
        f"/v1/leads/{lead_id}",
        json={"status": "accepted", "notes": "call on Monday"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "accepted"
    assert body["notes"] == "call on Monday"
    assert body["version"] == before.json()["version"] + 1
    assert response.headers["etag"] == f'"{body["version"]}"'
    assert response.headers["etag"] != etag
    assert "raw" in body

    again = await get_lead(http, owner, lead_id)
    assert again.json()["status"] == "accepted"
    assert again.json()["notes"] == "call on Monday"
    assert again.headers["etag"] == response.headers["etag"]
    stored = await admin_db.fetchrow(
        "SELECT status, notes, version FROM leads WHERE workspace_id = $1 AND id = $2",
        owner.workspace_id,
        lead_id,
    )
    assert dict(stored) == {"status": "accepted", "notes": "call on Monday", "version": 2}


async def test_patch_owner_must_be_a_member(api, http):
    owner, _, ids = await linked_workspace(api, 1)
    lead_id = ids[0]
    stranger = await api.signup()
    for candidate in (stranger.user_id, uuid.uuid4()):
        response = await http.patch(
            f"/v1/leads/{lead_id}", json={"owner_id": str(candidate)}, headers=owner.headers
        )
        body = assert_problem(response, 422, "validation-error")
        assert error_fields(body) == ["body.owner_id"]
    assert (await get_lead(http, owner, lead_id)).json()["owner_id"] is None

    member = await api.member(owner, "member")
    response = await http.patch(
        f"/v1/leads/{lead_id}", json={"owner_id": str(member.user_id)}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["owner_id"] == str(member.user_id)
    response = await http.patch(
        f"/v1/leads/{lead_id}", json={"owner_id": str(owner.user_id)}, headers=member.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["owner_id"] == str(owner.user_id)
    response = await http.patch(
        f"/v1/leads/{lead_id}", json={"owner_id": None}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["owner_id"] is None
    assert response.json()["version"] == 4


async def test_if_match_guards_against_lost_updates(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 1)
    lead_id = ids[0]
    stale = (await get_lead(http, owner, lead_id)).headers["etag"]
    first = await http.patch(
        f"/v1/leads/{lead_id}",
        json={"notes": "first writer"},
        headers={**owner.headers, "If-Match": stale},
    )
    assert first.status_code == 200, first.text
    current = first.headers["etag"]
    events_before = len(await events(admin_db, owner.workspace_id))

    second = await http.patch(
        f"/v1/leads/{lead_id}",
        json={"notes": "second writer"},
        headers={**owner.headers, "If-Match": stale},
    )
    body = assert_problem(second, 412, "precondition-failed")
    assert body["current_version"] == first.json()["version"]
    assert str(first.json()["version"]) in body["detail"]
    lead = await get_lead(http, owner, lead_id)
    assert lead.json()["notes"] == "first writer"
    assert lead.headers["etag"] == current
    assert len(await events(admin_db, owner.workspace_id)) == events_before

    third = await http.patch(
        f"/v1/leads/{lead_id}",
        json={"notes": "second writer, reapplied"},
        headers={**owner.headers, "If-Match": current},
    )
    assert third.status_code == 200, third.text
    assert third.json()["notes"] == "second writer, reapplied"
    assert third.json()["version"] == first.json()["version"] + 1

    star = await http.patch(
        f"/v1/leads/{lead_id}", json={"notes": "any"}, headers={**owner.headers, "If-Match": "*"}
    )
    assert star.status_code == 200, star.text


@pytest.mark.parametrize(
    "if_match", ["abc", "3", '"abc"', '"3', '"-1"', "", '"2147483648"', '"' + "9" * 5000 + '"']
)
async def test_malformed_if_match_is_400(api, http, shared, if_match):
    owner, vendor, _ = shared
    ids = await api.seed_leads(owner.workspace_id, vendor, 1)
    response = await http.patch(
        f"/v1/leads/{ids[0]}",
        json={"notes": "x"},
        headers={**owner.headers, "If-Match": if_match},
    )
    body = assert_problem(response, 400, "bad-request")
    assert "If-Match" in body["detail"]
    assert (await get_lead(http, owner, ids[0])).json()["notes"] is None


async def test_noop_patch_changes_nothing(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 1)
    lead_id = ids[0]
    response = await http.patch(
        f"/v1/leads/{lead_id}", json={"notes": "hello"}, headers=owner.headers
    )
    assert response.status_code == 200
    etag = response.headers["etag"]
    stored_before = await admin_db.fetchrow(
        "SELECT version, updated_at FROM leads WHERE workspace_id = $1 AND id = $2",
        owner.workspace_id,
        lead_id,
    )
    count = len(await events(admin_db, owner.workspace_id))

    for payload in ({}, {"notes": "hello"}, {"status": "new"}, {"owner_id": None}):
        response = await http.patch(f"/v1/leads/{lead_id}", json=payload, headers=owner.headers)
        assert response.status_code == 200, (payload, response.text)
        assert response.headers["etag"] == etag
        assert response.json()["version"] == 2

    stored_after = await admin_db.fetchrow(
        "SELECT version, updated_at FROM leads WHERE workspace_id = $1 AND id = $2",
        owner.workspace_id,
        lead_id,
    )
    assert stored_after == stored_before
    assert len(await events(admin_db, owner.workspace_id)) == count


async def test_invalid_transition_is_409_naming_the_allowed_targets(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 1)
    lead_id = ids[0]
    count = len(await events(admin_db, owner.workspace_id))
    response = await http.patch(
        f"/v1/leads/{lead_id}", json={"status": "converted"}, headers=owner.headers
    )
    body = assert_problem(response, 409, "conflict")
    assert "converted" in body["detail"]
    assert "accepted" in body["detail"]
    assert "rejected" in body["detail"]
    assert "working" not in body["detail"]
    lead = (await get_lead(http, owner, lead_id)).json()
    assert (lead["status"], lead["version"]) == ("new", 1)
    assert len(await events(admin_db, owner.workspace_id)) == count


async def test_pipeline_walk_and_final_state(api, http):
    owner, _, ids = await linked_workspace(api, 1)
    lead_id = ids[0]
    for status in ("accepted", "working", "lost", "working", "converted"):
        response = await http.patch(
            f"/v1/leads/{lead_id}", json={"status": status}, headers=owner.headers
        )
        assert response.status_code == 200, (status, response.text)
        assert response.json()["status"] == status
    assert response.json()["version"] == 6
    for status in ("working", "new", "lost"):
        response = await http.patch(
            f"/v1/leads/{lead_id}", json={"status": status}, headers=owner.headers
        )
        body = assert_problem(response, 409, "conflict")
        assert "final" in body["detail"]
    assert (await get_lead(http, owner, lead_id)).json()["status"] == "converted"


async def test_rejecting_needs_a_reason(api, http):
    owner, _, ids = await linked_workspace(api, 1)
    lead_id = ids[0]
    for payload in ({"status": "rejected"}, {"status": "rejected", "status_reason": ""}):
        response = await http.patch(f"/v1/leads/{lead_id}", json=payload, headers=owner.headers)
        body = assert_problem(response, 422, "validation-error")
        assert error_fields(body) == ["body.status_reason"]
    assert (await get_lead(http, owner, lead_id)).json()["status"] == "new"

    response = await http.patch(
        f"/v1/leads/{lead_id}",
        json={"status": "rejected", "status_reason": "duplicate of an existing deal"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "rejected"
    assert response.json()["status_reason"] == "duplicate of an existing deal"


async def test_a_rejected_lead_keeps_a_reason(api, http):
    """The reason is what the vendor acts on: once rejected, a lead cannot lose it."""
    owner, _, ids = await linked_workspace(api, 1)
    lead_id = ids[0]
    response = await http.patch(
        f"/v1/leads/{lead_id}",
        json={"status": "rejected", "status_reason": "not our territory"},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    response = await http.patch(
        f"/v1/leads/{lead_id}", json={"status_reason": None}, headers=owner.headers
    )
    assert_problem(response, 422, "validation-error")
    lead = (await get_lead(http, owner, lead_id)).json()
    assert (lead["status"], lead["status_reason"]) == ("rejected", "not our territory")


async def test_null_status_is_422(api, http):
    owner, _, ids = await linked_workspace(api, 1)
    response = await http.patch(f"/v1/leads/{ids[0]}", json={"status": None}, headers=owner.headers)
    body = assert_problem(response, 422, "validation-error")
    assert error_fields(body) == ["body.status"]


async def test_viewer_cannot_patch(api, http):
    owner, _, ids = await linked_workspace(api, 1)
    viewer = await api.member(owner, "viewer")
    assert (await http.get(f"/v1/leads/{ids[0]}", headers=viewer.headers)).status_code == 200
    response = await http.patch(
        f"/v1/leads/{ids[0]}", json={"notes": "sneaky"}, headers=viewer.headers
    )
    assert_problem(response, 403, "forbidden")
    assert (await get_lead(http, owner, ids[0])).json()["notes"] is None


async def test_each_change_writes_one_event_with_gap_free_seq(api, http, admin_db):
    owner, vendor, ids = await linked_workspace(api, 2)
    lead_id = ids[0]
    member = await api.member(owner, "member")
    start = await events(admin_db, owner.workspace_id)
    assert [row["seq"] for row in start] == list(range(1, len(start) + 1))

    changes: list[tuple[dict[str, Any], dict[str, list[Any]]]] = [
        ({"status": "accepted"}, {"status": ["new", "accepted"]}),
        ({"notes": "first call done"}, {"notes": [None, "first call done"]}),
        (
            {"owner_id": str(member.user_id), "status": "working"},
            {"owner_id": [None, str(member.user_id)], "status": ["accepted", "working"]},
        ),
        ({"notes": "second"}, {"notes": ["first call done", "second"]}),
    ]
    seq = len(start)
    for version, (payload, diff) in enumerate(changes, start=2):
        response = await http.patch(f"/v1/leads/{lead_id}", json=payload, headers=owner.headers)
        assert response.status_code == 200, response.text
        # Refused and no-op requests in between must not consume a sequence number.
        for refusal, status in (
            ({"status": "new"}, 409),
            ({"owner_id": str(uuid.uuid4())}, 422),
            (payload, 200),
        ):
            refused = await http.patch(f"/v1/leads/{lead_id}", json=refusal, headers=owner.headers)
            assert refused.status_code == status, refused.text
        rows = await events(admin_db, owner.workspace_id)
        assert len(rows) == seq + 1, "expected exactly one new event"
        row = rows[-1]
        seq += 1
        assert row["seq"] == seq
        assert (row["type"], row["entity_id"]) == ("lead.updated", lead_id)
        assert row["vendor_id"] == vendor
        assert (row["actor_type"], row["actor_id"]) == ("user", owner.user_id)
        data = event_data(row)
        assert data["changed"] == diff
        assert data["version"] == version

    all_rows = await events(admin_db, owner.workspace_id)
    assert [row["seq"] for row in all_rows] == list(range(1, len(all_rows) + 1))
    stored = await admin_db.fetchval(
        "SELECT event_seq FROM workspaces WHERE id = $1", owner.workspace_id
    )
    assert stored == len(all_rows)


async def test_concurrent_patches_get_distinct_consecutive_seqs(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 6)
    base = len(await events(admin_db, owner.workspace_id))
    responses = await asyncio.gather(
        *(
            http.patch(f"/v1/leads/{lead_id}", json={"status": "accepted"}, headers=owner.headers)
            for lead_id in ids
        )
    )
    assert [response.status_code for response in responses] == [200] * len(ids)
    rows = (await events(admin_db, owner.workspace_id))[base:]
    assert [row["seq"] for row in rows] == list(range(base + 1, base + len(ids) + 1))
    assert sorted(row["entity_id"] for row in rows) == sorted(ids)


async def test_concurrent_patches_on_one_lead_serialize(api, http, admin_db):
    owner, _, ids = await linked_workspace(api, 1)
    lead_id = ids[0]
    etag = (await get_lead(http, owner, lead_id)).headers["etag"]
    base = len(await events(admin_db, owner.workspace_id))
    responses = await asyncio.gather(
        *(
            http.patch(
                f"/v1/leads/{lead_id}",
                json={"notes": f"writer {n}"},
                headers={**owner.headers, "If-Match": etag},
            )
            for n in range(4)
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 412, 412, 412]
    winner = next(response for response in responses if response.status_code == 200)
    lead = (await get_lead(http, owner, lead_id)).json()
    assert lead["notes"] == winner.json()["notes"]
    assert lead["version"] == 2
    assert len(await events(admin_db, owner.workspace_id)) == base + 1
