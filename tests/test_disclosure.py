"""What a vendor sees of its leads is the reseller's choice per link: besides the status, the
reason for it unless told otherwise, the owner and the notes only if chosen. The database
applies it (a vendor's transaction runs as ``pane_vendor``, which reads leads only through
``vendor_leads``), in the vendor's lead reads and in its change feed alike."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from tests.factories import Account, Api, assert_problem, bearer

PRIVATE = {"status_reason": "no budget this year", "notes": "between us", "owner_id": None}


async def _world(api: Api, http) -> tuple[Account, dict[str, Any], str, uuid.UUID]:
    """A workspace linking a vendor, one of its leads rejected with a reason, owned, noted:
    (owner, link, the vendor's key, the lead)."""
    owner = await api.signup()
    vendor = await api.new_vendor()
    link = await api.link(owner, vendor)
    [lead_id] = await api.seed_leads(owner.workspace_id, vendor, 1)
    changed = await http.patch(
        f"/v1/leads/{lead_id}",
        json={
            "status": "rejected",
            "status_reason": PRIVATE["status_reason"],
            "notes": PRIVATE["notes"],
            "owner_id": str(owner.user_id),
        },
        headers=owner.headers,
    )
    assert changed.status_code == 200, changed.text
    return owner, link, await api.vendor_key(vendor), lead_id


async def _as_vendor(http, key: str, owner: Account, lead_id: uuid.UUID) -> list[dict[str, Any]]:
    """The lead as the vendor reads it: alone, in its list, and each field in its feed."""
    one = await http.get(f"/v1/leads/{lead_id}", headers=bearer(key))
    assert one.status_code == 200, one.text
    listed = await http.get("/v1/leads", headers=bearer(key))
    [in_list] = [item for item in listed.json()["items"] if item["id"] == str(lead_id)]
    feed = await http.get(
        "/v1/changes",
        params={"workspace_id": str(owner.workspace_id), "types": "lead.updated"},
        headers=bearer(key),
    )
    changed: dict[str, Any] = {}
    for event in feed.json()["items"]:
        changed.update({field: pair[1] for field, pair in event["data"]["changed"].items()})
    return [one.json(), in_list, changed]


async def test_by_default_a_vendor_reads_the_status_and_its_reason_never_the_notes_or_owner(
    api, http
):
    owner, link, key, lead_id = await _world(api, http)
    assert link["disclosed_lead_fields"] == ["status_reason"]
    assert link["disclosure_agreed_by"] is None
    one, in_list, changed = await _as_vendor(http, key, owner, lead_id)
    for seen in (one, in_list, changed):
        assert seen["status"] == "rejected"
        assert seen["status_reason"] == PRIVATE["status_reason"]
    for seen in (one, in_list):
        assert seen["notes"] is None
        assert seen["owner_id"] is None
    assert "notes" not in changed
    assert "owner_id" not in changed
    reseller = await http.get(f"/v1/leads/{lead_id}", headers=owner.headers)
    assert reseller.json()["notes"] == PRIVATE["notes"], "the reseller still reads its own"


@pytest.mark.parametrize("field", ["status_reason", "owner_id", "notes"])
async def test_each_field_reaches_the_vendor_only_while_the_link_discloses_it(api, http, field):
    owner, link, key, lead_id = await _world(api, http)
    expected = str(owner.user_id) if field == "owner_id" else PRIVATE[field]
    for disclosed in ([field], []):
        chosen = await http.put(
            f"/v1/links/{link['id']}/disclosure",
            json={"lead_fields": disclosed},
            headers=owner.headers,
        )
        assert chosen.status_code == 200, chosen.text
        assert chosen.json()["disclosed_lead_fields"] == disclosed
        one, in_list, changed = await _as_vendor(http, key, owner, lead_id)
        if disclosed:
            assert (one[field], in_list[field], changed[field]) == (expected, expected, expected)
        else:
            assert (one[field], in_list[field]) == (None, None)
            assert field not in changed
        assert one["status"] == "rejected", "the status always"


async def test_a_disclosure_is_agreed_by_a_person_and_recorded(api, http):
    owner, link, _, _ = await _world(api, http)
    chosen = await http.put(
        f"/v1/links/{link['id']}/disclosure",
        json={"lead_fields": ["notes", "status_reason"]},
        headers=owner.headers,
    )
    shown = chosen.json()
    assert shown["disclosed_lead_fields"] == ["status_reason", "notes"]
    assert shown["disclosure_agreed_by"] == str(owner.user_id)
    assert shown["disclosure_agreed_at"] is not None
    feed = await http.get("/v1/changes", params={"types": "link.updated"}, headers=owner.headers)
    [event] = feed.json()["items"]
    assert event["data"]["changed"] == {
        "disclosed_lead_fields": [["status_reason"], ["status_reason", "notes"]]
    }
    assert event["actor"] == {"type": "user", "id": str(owner.user_id)}

    key = await api.api_key(owner, ["links:write"])
    by_key = await http.put(
        f"/v1/links/{link['id']}/disclosure", json={"lead_fields": []}, headers=bearer(key)
    )
    assert "agreed by a person" in assert_problem(by_key, 403)["detail"]
    unknown = await http.put(
        f"/v1/links/{link['id']}/disclosure",
        json={"lead_fields": ["email"]},
        headers=owner.headers,
    )
    assert_problem(unknown, 422)
    other = await api.signup()
    theirs = await http.put(
        f"/v1/links/{link['id']}/disclosure", json={"lead_fields": []}, headers=other.headers
    )
    assert_problem(theirs, 404)


async def test_the_vendor_role_cannot_read_the_resellers_fields_whatever_the_query(
    api, http, servers
):
    """Below the API: as the role a vendor's transaction runs as, the table itself is refused
    and the view shows only what the link discloses, only for the vendor in the setting."""
    owner, link, _, lead_id = await _world(api, http)
    connection = await asyncpg.connect(servers.app_url)

    async def read_as_vendor(vendor_id: object, sql: str) -> list[dict[str, Any]]:
        async with connection.transaction():
            await connection.execute(
                f"SELECT set_config('pane.vendor_id', '{vendor_id}', true);"
                " SET LOCAL ROLE pane_vendor"
            )
            return [dict(row) for row in await connection.fetch(sql)]

    try:
        for refused in ("SELECT notes FROM leads", "SELECT * FROM deals"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await read_as_vendor(link["vendor_id"], refused)
        shown = await read_as_vendor(
            link["vendor_id"], "SELECT id, status, status_reason, notes, owner_id FROM vendor_leads"
        )
        assert shown == [
            {
                "id": lead_id,
                "status": "rejected",
                "status_reason": PRIVATE["status_reason"],
                "notes": None,
                "owner_id": None,
            }
        ]
        another = await read_as_vendor(uuid.uuid4(), "SELECT id FROM vendor_leads")
        assert another == [], "another vendor reads none of them"
        await http.post(f"/v1/links/{link['id']}/pause", headers=owner.headers)
        paused = await read_as_vendor(link["vendor_id"], "SELECT id FROM vendor_leads")
        assert paused == [], "nor does the vendor once its link is paused"
    finally:
        await connection.close()


async def test_the_vendor_role_may_use_all_the_runtime_role_may_but_leads_and_deals(admin_db):
    """A table added later must be granted to pane_vendor too (or kept from it on purpose)."""
    missing = await admin_db.fetch(
        """
        SELECT g.table_name, g.privilege_type FROM information_schema.role_table_grants g
        WHERE g.grantee = 'pane_app' AND g.table_schema = 'public'
          AND g.table_name NOT IN ('leads', 'deals')
          AND NOT has_table_privilege('pane_vendor', format('%I.%I', g.table_schema, g.table_name),
                                      g.privilege_type)
        """
    )
    assert [tuple(row) for row in missing] == []
    for table in ("leads", "deals"):
        assert not await admin_db.fetchval(
            "SELECT has_table_privilege('pane_vendor', $1, 'SELECT')", table
        )
