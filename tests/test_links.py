"""Vendor links (credentials sealed at rest, lifecycle, events and audit), credential key
rotation, and the vendor catalog."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import orjson
import pytest
from cryptography.fernet import Fernet, InvalidToken

import pane.operator
from pane.operator import rotate_credentials
from pane.secrets import CredentialDecryptError, load_key_ring
from tests.conftest import make_settings
from tests.factories import (
    LINK_CONFIG,
    LINK_CONNECTOR,
    assert_problem,
    error_fields,
    price_file,
)

LINK_FIELDS = {
    "id",
    "workspace_id",
    "vendor_id",
    "connector",
    "config",
    "has_credentials",
    "status",
    "sync_interval_seconds",
    "full_resync_interval_seconds",
    "next_sync_at",
    "last_synced_at",
    "last_full_sync_at",
    "consecutive_failures",
    "last_error",
    "has_webhook_secret",
    "webhook_previous_secret_until",
    "disclosed_lead_fields",
    "disclosure_agreed_by",
    "disclosure_agreed_at",
    "created_at",
    "updated_at",
}


def assert_no_secret(response: httpx.Response, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in response.text
    body = response.json()
    items = body["items"] if isinstance(body, dict) and "items" in body else [body]
    for item in items:
        # a new link's webhook secret is shown once, in the answer that created it
        assert set(item) - {"webhook_secret"} == LINK_FIELDS


async def create_link(http, owner, vendor_id, **fields: Any) -> httpx.Response:
    payload: dict[str, Any] = {
        "vendor_id": str(vendor_id),
        "connector": LINK_CONNECTOR,
        "config": LINK_CONFIG,
    }
    payload.update(fields)
    return await http.post("/v1/links", json=payload, headers=owner.headers)


async def stored(admin_db, workspace_id, link_id) -> Any:
    return await admin_db.fetchrow(
        "SELECT connector, config, credentials_encrypted, status FROM vendor_links"
        " WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        uuid.UUID(str(link_id)),
    )


def as_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def secret_count_query() -> str:
    return "SELECT count(*) FROM vendor_links WHERE credentials_encrypted IS NOT NULL"


@pytest.fixture(scope="module")
async def shared_owner(api):
    return await api.signup()


# --- create -----------------------------------------------------------------------------------


async def test_create_seals_credentials_and_never_returns_them(api, http, settings, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor()
    secret = f"s3cret-{uuid.uuid4().hex}"
    credentials = {"token": secret}
    config = {
        "url": price_file("pane-reseller/prices.csv", sep=";"),
        "delimiter": ";",
        "columns": {"sku": "sku", "currency": "currency"},
    }
    response = await create_link(http, owner, vendor, config=config, credentials=credentials)
    assert response.status_code == 201, response.text
    assert_no_secret(response, secret)
    link = response.json()
    assert link["has_credentials"] is True
    assert link["status"] == "active"
    assert link["connector"] == "csv_price_list"
    assert link["vendor_id"] == str(vendor)
    assert link["workspace_id"] == str(owner.workspace_id)
    # stored as the connector reads it: what was sent, defaults filled in
    assert link["config"]["url"] == config["url"]
    assert link["config"]["delimiter"] == ";"
    assert link["config"]["columns"]["sku"] == "sku"
    assert link["config"]["decimal_separator"] == "."

    row = await stored(admin_db, owner.workspace_id, link["id"])
    sealed = row["credentials_encrypted"]
    assert sealed
    assert secret not in sealed
    assert orjson.loads(load_key_ring(settings).decrypt(sealed)) == credentials

    for response in (
        await http.get(f"/v1/links/{link['id']}", headers=owner.headers),
        await http.get("/v1/links", headers=owner.headers),
    ):
        assert response.status_code == 200
        assert_no_secret(response, secret)
    (listed,) = (await http.get("/v1/links", headers=owner.headers)).json()["items"]
    assert link.pop("webhook_secret") is None  # a price file pushes no webhooks
    assert listed == link


async def test_create_without_credentials(api, http, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor()
    response = await create_link(http, owner, vendor)
    assert response.status_code == 201, response.text
    assert response.json()["has_credentials"] is False
    assert response.json()["config"]["url"] == LINK_CONFIG["url"]
    row = await stored(admin_db, owner.workspace_id, response.json()["id"])
    assert row["credentials_encrypted"] is None


async def test_duplicate_vendor_is_409(api, http, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor()
    first = await create_link(http, owner, vendor, credentials={"token": "one"})
    assert first.status_code == 201
    other_config = {**LINK_CONFIG, "url": price_file("elsewhere/list.csv")}
    again = await create_link(http, owner, vendor, config=other_config)
    body = assert_problem(again, 409, "conflict")
    assert str(vendor) in body["detail"]
    count = await admin_db.fetchval(
        "SELECT count(*) FROM vendor_links WHERE workspace_id = $1", owner.workspace_id
    )
    assert count == 1
    # Another workspace may link the same vendor.
    other = await api.signup()
    assert (await create_link(http, other, vendor)).status_code == 201


async def test_unknown_vendor_is_422(api, http, admin_db):
    owner = await api.signup()
    response = await create_link(http, owner, uuid.uuid4(), credentials={"token": "x"})
    body = assert_problem(response, 422, "validation-error")
    assert error_fields(body) == ["body.vendor_id"]
    count = await admin_db.fetchval(
        "SELECT count(*) FROM vendor_links WHERE workspace_id = $1", owner.workspace_id
    )
    assert count == 0


@pytest.mark.parametrize(
    "connector", ["", "a", "Generic_REST", "generic-rest", "1rest", "rest api", "x" * 64, 5, None]
)
async def test_bad_connector_name_is_422(api, http, admin_db, shared_owner, connector):
    vendor = await api.new_vendor()
    response = await create_link(http, shared_owner, vendor, connector=connector)
    body = assert_problem(response, 422, "validation-error")
    assert error_fields(body) == ["body.connector"]
    linked = await admin_db.fetchval(
        "SELECT count(*) FROM vendor_links WHERE vendor_id = $1", vendor
    )
    assert linked == 0


@pytest.mark.parametrize("connector", ["ab", "hubspot_partners", "x" + "y" * 62])
async def test_a_connector_that_is_not_installed_is_422(api, http, shared_owner, connector):
    response = await create_link(http, shared_owner, await api.new_vendor(), connector=connector)
    body = assert_problem(response, 422, "validation-error")
    assert error_fields(body) == ["body.connector"]
    for installed in ("csv_price_list", "generic_rest", "salesforce"):
        assert installed in body["detail"]


async def test_config_and_credentials_must_fit_the_connector(api, http, admin_db, shared_owner):
    vendor = await api.new_vendor()
    no_url = {"columns": {"sku": "sku"}}
    body = assert_problem(
        await create_link(http, shared_owner, vendor, config=no_url), 422, "validation-error"
    )
    assert error_fields(body) == ["body.config.url"]
    assert "csv_price_list" in body["detail"]
    bad_separator = {**LINK_CONFIG, "decimal_separator": ";"}
    body = assert_problem(
        await create_link(http, shared_owner, vendor, config=bad_separator), 422, "validation-error"
    )
    assert error_fields(body) == ["body.config.decimal_separator"]
    body = assert_problem(
        await create_link(http, shared_owner, vendor, credentials={"password": "x"}),
        422,
        "validation-error",
    )
    assert error_fields(body) == ["body.credentials.password"]
    linked = await admin_db.fetchval(
        "SELECT count(*) FROM vendor_links WHERE vendor_id = $1", vendor
    )
    assert linked == 0


async def test_only_admins_manage_links(api, http):
    owner = await api.signup()
    vendor = await api.new_vendor()
    link = await api.link(owner, vendor)
    member = await api.member(owner, "member")
    viewer = await api.member(owner, "viewer")
    for who in (member, viewer):
        assert_problem(await create_link(http, who, await api.new_vendor()), 403, "forbidden")
        for suffix in ("/pause", "/resume"):
            response = await http.post(f"/v1/links/{link['id']}{suffix}", headers=who.headers)
            assert_problem(response, 403, "forbidden")
        response = await http.delete(f"/v1/links/{link['id']}", headers=who.headers)
        assert_problem(response, 403, "forbidden")
        listed = await http.get("/v1/links", headers=who.headers)
        assert [item["id"] for item in listed.json()["items"]] == [link["id"]]
    admin = await api.member(owner, "admin")
    assert (await create_link(http, admin, await api.new_vendor())).status_code == 201


# --- list -------------------------------------------------------------------------------------


async def test_list_pages_through_the_workspace_links(api, http):
    owner = await api.signup()
    ids = []
    for _ in range(5):
        ids.append((await api.link(owner, await api.new_vendor()))["id"])
    other = await api.signup()
    await api.link(other, await api.new_vendor())

    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await http.get("/v1/links", params=params, headers=owner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        assert len(body["items"]) == (2 if body["next_cursor"] else 1)
        seen.extend(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(ids, key=uuid.UUID)
    assert len(set(seen)) == 5


async def test_link_list_limit_bounds(api, http):
    owner = await api.signup()
    for limit in (0, 201):
        response = await http.get("/v1/links", params={"limit": limit}, headers=owner.headers)
        assert error_fields(assert_problem(response, 422)) == ["query.limit"]
    response = await http.get("/v1/links", params={"cursor": "nonsense"}, headers=owner.headers)
    assert_problem(response, 400, "bad-cursor")


# --- update, pause, resume, delete ------------------------------------------------------------


async def test_patch_config_keeps_credentials(api, http, admin_db):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor(), credentials={"token": "keep-me"})
    sealed = (await stored(admin_db, owner.workspace_id, link["id"]))["credentials_encrypted"]

    response = await http.patch(
        f"/v1/links/{link['id']}",
        json={"config": {**LINK_CONFIG, "url": price_file("v2/list.csv")}},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert_no_secret(response, "keep-me")
    assert response.json()["config"]["url"] == price_file("v2/list.csv")
    assert response.json()["has_credentials"] is True
    row = await stored(admin_db, owner.workspace_id, link["id"])
    assert as_json(row["config"]) == response.json()["config"]
    assert row["credentials_encrypted"] == sealed


async def test_moving_a_link_to_another_address_needs_its_credentials_again(
    api, http, settings, admin_db
):
    """A key with links:write cannot point stored secrets at a host of its choice."""
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor(), credentials={"token": "keep-me"})
    before = await stored(admin_db, owner.workspace_id, link["id"])
    elsewhere = price_file("prices.csv").replace("127.0.0.1", "localhost")

    refused = await http.patch(
        f"/v1/links/{link['id']}",
        json={"config": {**LINK_CONFIG, "url": elsewhere}},
        headers=owner.headers,
    )
    body = assert_problem(refused, 422, "validation-error")
    assert error_fields(body) == ["body.credentials"]
    assert "localhost" in body["detail"]
    assert await stored(admin_db, owner.workspace_id, link["id"]) == before

    moved = await http.patch(
        f"/v1/links/{link['id']}",
        json={"config": {**LINK_CONFIG, "url": elsewhere}, "credentials": {"token": "re-entered"}},
        headers=owner.headers,
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["config"]["url"] == elsewhere
    after = await stored(admin_db, owner.workspace_id, link["id"])
    sealed = load_key_ring(settings).decrypt(after["credentials_encrypted"])
    assert orjson.loads(sealed) == {"token": "re-entered"}


async def test_patch_credentials_reseals_them(api, http, settings, admin_db):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor(), credentials={"token": "old-secret"})
    before = await stored(admin_db, owner.workspace_id, link["id"])

    response = await http.patch(
        f"/v1/links/{link['id']}",
        json={"credentials": {"token": "new-secret"}},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    assert_no_secret(response, "new-secret", "old-secret")
    assert response.json()["config"] == link["config"]
    after = await stored(admin_db, owner.workspace_id, link["id"])
    assert after["credentials_encrypted"] != before["credentials_encrypted"]
    assert "new-secret" not in after["credentials_encrypted"]
    keyring = load_key_ring(settings)
    assert orjson.loads(keyring.decrypt(after["credentials_encrypted"])) == {"token": "new-secret"}
    assert as_json(after["config"]) == link["config"]


async def test_new_credentials_clear_needs_reauth(api, http, admin_db):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    await admin_db.execute(
        "UPDATE vendor_links SET status = 'needs_reauth' WHERE workspace_id = $1 AND id = $2",
        owner.workspace_id,
        uuid.UUID(link["id"]),
    )
    response = await http.post(f"/v1/links/{link['id']}/resume", headers=owner.headers)
    body = assert_problem(response, 409, "conflict")
    assert "credentials" in body["detail"]
    response = await http.patch(
        f"/v1/links/{link['id']}",
        json={"config": {**LINK_CONFIG, "url": price_file("prices.csv", "|"), "delimiter": "|"}},
        headers=owner.headers,
    )
    assert response.json()["status"] == "needs_reauth"
    response = await http.patch(
        f"/v1/links/{link['id']}", json={"credentials": {"token": "fresh"}}, headers=owner.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"


async def test_pause_and_resume(api, http, admin_db):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    response = await http.post(f"/v1/links/{link['id']}/pause", headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "paused"
    assert (await stored(admin_db, owner.workspace_id, link["id"]))["status"] == "paused"
    listed = (await http.get("/v1/links", headers=owner.headers)).json()["items"]
    assert [item["status"] for item in listed] == ["paused"]

    again = await http.post(f"/v1/links/{link['id']}/pause", headers=owner.headers)
    assert again.status_code == 200
    assert again.json()["status"] == "paused"

    response = await http.post(f"/v1/links/{link['id']}/resume", headers=owner.headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "active"
    fetched = await http.get(f"/v1/links/{link['id']}", headers=owner.headers)
    assert fetched.json()["status"] == "active"
    assert (await stored(admin_db, owner.workspace_id, link["id"]))["status"] == "active"


async def test_delete_then_404_and_leads_stay(api, http, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor()
    link = await api.link(owner, vendor)
    lead_ids = await api.seed_leads(owner.workspace_id, vendor, 2)

    response = await http.delete(f"/v1/links/{link['id']}", headers=owner.headers)
    assert response.status_code == 204
    assert response.content == b""
    assert await stored(admin_db, owner.workspace_id, link["id"]) is None
    for method, suffix in (("GET", ""), ("DELETE", ""), ("PATCH", ""), ("POST", "/pause")):
        response = await http.request(
            method,
            f"/v1/links/{link['id']}{suffix}",
            json={"config": {}} if method == "PATCH" else None,
            headers=owner.headers,
        )
        assert_problem(response, 404, "not-found")
    assert (await http.get("/v1/links", headers=owner.headers)).json()["items"] == []
    leads = (await http.get("/v1/leads", headers=owner.headers)).json()["items"]
    assert sorted(item["id"] for item in leads) == sorted(str(i) for i in lead_ids)
    # The vendor can be linked again.
    assert (await create_link(http, owner, vendor)).status_code == 201


async def test_another_workspaces_link_is_404(api, http, admin_db):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    other = await api.signup()
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("DELETE", ""),
    ):
        response = await http.request(
            method,
            f"/v1/links/{link['id']}{suffix}",
            json={"config": {"hijacked": True}} if method == "PATCH" else None,
            headers=other.headers,
        )
        assert_problem(response, 404, "not-found")
    row = await stored(admin_db, owner.workspace_id, link["id"])
    assert row["status"] == "active"
    assert as_json(row["config"]) == link["config"]


async def test_lifecycle_writes_events_and_audit(api, http, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor()
    request_ids = [f"link-test-{step}-{uuid.uuid4().hex[:8]}" for step in range(5)]
    headers = [{**owner.headers, "X-Request-Id": rid} for rid in request_ids]
    created = await http.post(
        "/v1/links",
        json={
            "vendor_id": str(vendor),
            "connector": LINK_CONNECTOR,
            "config": LINK_CONFIG,
            "credentials": {"token": "v"},
        },
        headers=headers[0],
    )
    assert created.status_code == 201
    link_id = created.json()["id"]
    steps = [
        await http.patch(
            f"/v1/links/{link_id}",
            json={
                "config": {**LINK_CONFIG, "url": price_file("prices.csv", ";"), "delimiter": ";"}
            },
            headers=headers[1],
        ),
        await http.post(f"/v1/links/{link_id}/pause", headers=headers[2]),
        await http.post(f"/v1/links/{link_id}/resume", headers=headers[3]),
        await http.delete(f"/v1/links/{link_id}", headers=headers[4]),
    ]
    assert [response.status_code for response in steps] == [200, 200, 200, 204]

    events = await admin_db.fetch(
        "SELECT seq, type, entity_id, vendor_id, actor_type, actor_id, document -> 'data' AS data"
        " FROM events WHERE workspace_id = $1 ORDER BY seq",
        owner.workspace_id,
    )
    link_events = [row for row in events if row["type"].startswith("link.")]
    assert [row["type"] for row in link_events] == [
        "link.created",
        "link.updated",
        "link.paused",
        "link.resumed",
        "link.deleted",
    ]
    assert [row["seq"] for row in events] == list(range(1, len(events) + 1))
    for row in link_events:
        assert row["entity_id"] == uuid.UUID(link_id)
        assert row["vendor_id"] == vendor
        assert (row["actor_type"], row["actor_id"]) == ("user", owner.user_id)
        assert "k" not in as_json(row["data"])
        assert "credentials" not in json.dumps(as_json(row["data"]))
    assert [as_json(row["data"])["status"] for row in link_events] == [
        "active",
        "active",
        "paused",
        "active",
        "active",
    ]

    audit = await admin_db.fetch(
        "SELECT action, actor_type, actor_id, target_type, target_id, request_id, ip, details"
        " FROM audit_log WHERE workspace_id = $1 AND action LIKE 'link.%' ORDER BY id",
        owner.workspace_id,
    )
    assert [row["action"] for row in audit] == [
        "link.created",
        "link.updated",
        "link.paused",
        "link.resumed",
        "link.deleted",
    ]
    assert [row["request_id"] for row in audit] == request_ids
    for row in audit:
        assert (row["actor_type"], row["actor_id"]) == ("user", owner.user_id)
        assert (row["target_type"], row["target_id"]) == ("link", link_id)
        assert row["ip"]
        assert as_json(row["details"])["vendor_id"] == str(vendor)


async def test_refused_link_changes_write_no_events(api, http, admin_db):
    owner = await api.signup()
    vendor = await api.new_vendor()
    link = await api.link(owner, vendor)
    await http.post(f"/v1/links/{link['id']}/pause", headers=owner.headers)
    count = await admin_db.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1", owner.workspace_id
    )
    audits = await admin_db.fetchval(
        "SELECT count(*) FROM audit_log WHERE workspace_id = $1", owner.workspace_id
    )
    await create_link(http, owner, vendor)  # duplicate: 409
    await create_link(http, owner, uuid.uuid4())  # unknown vendor: 422
    await http.post(f"/v1/links/{link['id']}/pause", headers=owner.headers)  # already paused
    assert count == await admin_db.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1", owner.workspace_id
    )
    assert audits == await admin_db.fetchval(
        "SELECT count(*) FROM audit_log WHERE workspace_id = $1", owner.workspace_id
    )


# --- credential key rotation ------------------------------------------------------------------


async def _sealed(admin_db, workspace_id) -> dict[uuid.UUID, str | None]:
    rows = await admin_db.fetch(
        "SELECT id, credentials_encrypted FROM vendor_links WHERE workspace_id = $1",
        workspace_id,
    )
    return {row["id"]: row["credentials_encrypted"] for row in rows}


async def test_rotate_credentials_reencrypts_with_the_new_key(
    api, http, settings, servers, admin_db
):
    owner = await api.signup()
    with_secret = await api.link(owner, await api.new_vendor(), credentials={"token": "rot-8"})
    without = await create_link(http, owner, await api.new_vendor())
    assert without.status_code == 201
    before = await _sealed(admin_db, owner.workspace_id)
    total = await admin_db.fetchval(secret_count_query())

    old = settings.credential_keys[0].get_secret_value()
    new = Fernet.generate_key().decode()
    try:
        rotated = await rotate_credentials(make_settings(servers, credential_keys=[new, old]))
        after = await _sealed(admin_db, owner.workspace_id)
        link_id = uuid.UUID(with_secret["id"])
        assert rotated == total
        assert after[link_id] != before[link_id]
        assert orjson.loads(Fernet(new).decrypt(after[link_id].encode())) == {"token": "rot-8"}
        with pytest.raises(InvalidToken):
            Fernet(old).decrypt(after[link_id].encode())
        assert after[uuid.UUID(without.json()["id"])] is None
        # The API reports what it did before: still has credentials, nothing leaks.
        response = await http.get(f"/v1/links/{link_id}", headers=owner.headers)
        assert response.json()["has_credentials"] is True
        assert_no_secret(response, "rot-8")
    finally:
        # Put every ciphertext back under the key the running app uses.
        await rotate_credentials(make_settings(servers, credential_keys=[old, new]))
    restored = await _sealed(admin_db, owner.workspace_id)
    assert orjson.loads(Fernet(old).decrypt(restored[link_id].encode())) == {"token": "rot-8"}


async def test_rotate_credentials_pages_through_every_link(
    api, settings, servers, admin_db, monkeypatch
):
    """Rotation reads links in batches; a small batch must still reach every link, including
    several in one workspace."""
    owner = await api.signup()
    links = [
        await api.link(owner, await api.new_vendor(), credentials={"token": f"k{n}"})
        for n in range(3)
    ]
    total = await admin_db.fetchval(secret_count_query())
    old = settings.credential_keys[0].get_secret_value()
    new = Fernet.generate_key().decode()
    monkeypatch.setattr(pane.operator, "_BATCH", 1)
    try:
        rotated = await rotate_credentials(make_settings(servers, credential_keys=[new, old]))
        after = await _sealed(admin_db, owner.workspace_id)
        undecryptable = []
        for n, link in enumerate(links):
            sealed = after[uuid.UUID(link["id"])]
            try:
                assert orjson.loads(Fernet(new).decrypt(sealed.encode())) == {"token": f"k{n}"}
            except InvalidToken:
                undecryptable.append(link["id"])
        assert undecryptable == [], "links left under the old key"
        assert rotated == total
    finally:
        monkeypatch.undo()
        await rotate_credentials(make_settings(servers, credential_keys=[old, new]))


async def test_rotation_with_a_missing_key_changes_nothing(api, settings, servers, admin_db):
    owner = await api.signup()
    await api.link(owner, await api.new_vendor(), credentials={"token": "kept"})
    before = await _sealed(admin_db, owner.workspace_id)
    stranger = Fernet.generate_key().decode()
    with pytest.raises(CredentialDecryptError, match="cannot be decrypted"):
        await rotate_credentials(make_settings(servers, credential_keys=[stranger]))
    assert await _sealed(admin_db, owner.workspace_id) == before


# --- vendor catalog ---------------------------------------------------------------------------


async def walk_vendors(http, owner, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query: dict[str, Any] = {**params, "limit": limit}
        if cursor:
            query["cursor"] = cursor
        response = await http.get("/v1/vendors", params=query, headers=owner.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_catalog_lists_seeded_vendors(api, http):
    owner = await api.signup()
    items = await walk_vendors(http, owner, 200)
    by_slug = {item["slug"]: item for item in items}
    assert by_slug["cisco"]["kind"] == "vendor"
    assert by_slug["cisco"]["name"] == "Cisco"
    assert by_slug["cisco"]["website"] == "https://www.cisco.com"
    assert by_slug["td-synnex"]["kind"] == "distributor"
    assert by_slug["td-synnex"]["name"] == "TD SYNNEX"
    for item in items:
        assert set(item) == {"id", "slug", "name", "kind", "website"}
    fetched = await http.get(f"/v1/vendors/{by_slug['cisco']['id']}", headers=owner.headers)
    assert fetched.status_code == 200
    assert fetched.json() == by_slug["cisco"]
    missing = await http.get(f"/v1/vendors/{uuid.uuid4()}", headers=owner.headers)
    assert_problem(missing, 404, "not-found")


async def test_catalog_needs_authentication(http):
    assert_problem(await http.get("/v1/vendors"), 401, "unauthorized")


async def test_catalog_search(api, http):
    owner = await api.signup()
    synnex = await walk_vendors(http, owner, 50, q="SyNnEx")
    assert "td-synnex" in {item["slug"] for item in synnex}
    for item in synnex:
        assert "synnex" in item["name"].lower() or "synnex" in item["slug"]
    # by slug only: "palo-alto" is in the slug, the name says "Palo Alto"
    assert {item["slug"] for item in await walk_vendors(http, owner, 50, q="palo-alto")} == {
        "palo-alto-networks"
    }
    assert await walk_vendors(http, owner, 50, q="no vendor is called this") == []
    for wildcard in ("%", "_"):
        for item in await walk_vendors(http, owner, 50, q=wildcard):
            assert wildcard in item["name"] or wildcard in item["slug"]


async def test_catalog_kind_filter(api, http):
    owner = await api.signup()
    distributors = await walk_vendors(http, owner, 200, kind="distributor")
    vendors = await walk_vendors(http, owner, 200, kind="vendor")
    everything = await walk_vendors(http, owner, 200)
    assert {item["kind"] for item in distributors} == {"distributor"}
    assert {item["kind"] for item in vendors} == {"vendor"}
    assert {"td-synnex", "ingram-micro", "arrow"} <= {item["slug"] for item in distributors}
    assert "cisco" in {item["slug"] for item in vendors}
    assert len(distributors) + len(vendors) == len(everything)
    response = await http.get("/v1/vendors", params={"kind": "reseller"}, headers=owner.headers)
    assert error_fields(assert_problem(response, 422)) == ["query.kind"]


async def test_catalog_pages_by_name(api, http, admin_db):
    owner = await api.signup()
    expected = [
        str(row["id"]) for row in await admin_db.fetch("SELECT id FROM vendors ORDER BY name, id")
    ]
    assert len(expected) > 14
    items = await walk_vendors(http, owner, 7)
    assert [item["id"] for item in items] == expected
    distributors = await walk_vendors(http, owner, 2, kind="distributor")
    expected_distributors = [
        str(row["id"])
        for row in await admin_db.fetch(
            "SELECT id FROM vendors WHERE kind = 'distributor' ORDER BY name, id"
        )
    ]
    assert [item["id"] for item in distributors] == expected_distributors


async def test_catalog_pages_past_equal_names(api, http, admin_db):
    """Two vendors with one name still each appear once: the cursor carries the id too."""
    owner = await api.signup()
    name = f"Twin {uuid.uuid4().hex[:8]}"
    ids = []
    for _ in range(3):
        vendor_id = await api.new_vendor()
        await admin_db.execute("UPDATE vendors SET name = $2 WHERE id = $1", vendor_id, name)
        ids.append(str(vendor_id))
    items = await walk_vendors(http, owner, 1, q=name)
    assert [item["id"] for item in items] == sorted(ids, key=uuid.UUID)


async def test_catalog_cursor_from_another_list(api, http):
    owner = await api.signup()
    await api.link(owner, await api.new_vendor())
    await api.link(owner, await api.new_vendor())
    link_cursor = (await http.get("/v1/links", params={"limit": 1}, headers=owner.headers)).json()[
        "next_cursor"
    ]
    assert link_cursor
    response = await http.get("/v1/vendors", params={"cursor": link_cursor}, headers=owner.headers)
    assert_problem(response, 400, "bad-cursor")
