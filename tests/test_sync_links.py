"""Links as the sync engine keeps them: rotated refresh tokens stored sealed, vendor URLs
that point inside the operator's network refused, schedules a reseller can change."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pane.secrets import load_key_ring
from pane.sync.engine import sync_link
from tests.conftest import running_app
from tests.factories import assert_problem, price_file


class RotatingVendor:
    """A partner API whose token endpoint rotates refresh tokens: each one works once."""

    def __init__(self) -> None:
        self.valid_refresh = "rt-1"
        self.access = "at-0"
        self.token_requests = 0
        self.app = Starlette(
            routes=[
                Route("/oauth/token", self.token, methods=["POST"]),
                Route("/leads", self.leads),
            ]
        )

    async def token(self, request: Request) -> JSONResponse:
        form = await request.form()
        self.token_requests += 1
        if form.get("refresh_token") != self.valid_refresh:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.valid_refresh = f"rt-{self.token_requests + 1}"
        self.access = f"at-{self.token_requests}"
        return JSONResponse(
            {"access_token": self.access, "expires_in": 3600, "refresh_token": self.valid_refresh}
        )

    async def leads(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.access}":
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"items": [{"id": "L-1", "given": "Ada", "family": "Byron"}]})


def rotating_manifest(base: str) -> dict[str, Any]:
    return {
        "manifest": {
            "version": 1,
            "title": "Rotating Partner API",
            "base_url": base,
            "auth": {"type": "oauth2_refresh_token", "token_url": "oauth/token"},
            "streams": {
                "leads": {
                    "path": "leads",
                    "records_path": "items",
                    "pagination": {"type": "none"},
                    "fields": {"external_id": "id", "first_name": "given", "last_name": "family"},
                }
            },
        }
    }


async def test_a_rotated_refresh_token_is_stored_sealed_and_used_next_time(
    api, loopback, sync_deps, admin_db, settings
):
    vendor = RotatingVendor()
    base = loopback.mount(vendor.app)
    owner = await api.signup()
    credentials = {"client_id": "pane", "client_secret": "s3cret", "refresh_token": "rt-1"}
    link_id, _ = await api.link_new_vendor(
        owner, "generic_rest", rotating_manifest(base), credentials
    )
    # the link check spent rt-1; the vendor's answer (rt-2) is what the link must hold now

    async def stored() -> dict[str, Any]:
        sealed = await admin_db.fetchval(
            "SELECT credentials_encrypted FROM vendor_links WHERE id = $1", link_id
        )
        return dict(orjson.loads(load_key_ring(settings).decrypt(sealed)))

    await sync_deps.redis.delete(*(await sync_deps.redis.keys("pane:oauth:*")))
    [result] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert result.status == "succeeded", result.error
    assert (await stored())["refresh_token"] == vendor.valid_refresh
    assert (await stored())["client_secret"] == "s3cret"

    # with every cached token gone (another worker, a restart), the stored token still works
    await sync_deps.redis.delete(*(await sync_deps.redis.keys("pane:oauth:*")))
    [again] = await sync_link(sync_deps, workspace_id=owner.workspace_id, link_id=link_id)
    assert again.status == "succeeded", again.error
    assert (await stored())["refresh_token"] == vendor.valid_refresh


async def test_vendor_urls_inside_the_network_are_refused_unless_allowed(servers, api):
    async with running_app(servers, allow_private_vendor_urls=False) as (_, client):
        owner = await api.signup()
        response = await client.post(
            "/v1/links",
            json={
                "vendor_id": str(await api.new_vendor()),
                "connector": "csv_price_list",
                "config": {
                    "url": price_file("prices.csv"),
                    "columns": {"sku": "sku", "currency": "currency", "list_price": "price"},
                },
            },
            headers=owner.headers,
        )
    body = assert_problem(response, 422)
    assert "internal address" in body["detail"]


async def test_a_reseller_changes_how_often_a_link_syncs(api, http):
    owner = await api.signup()
    link = await api.link(owner, await api.new_vendor())
    assert link["sync_interval_seconds"] == 900
    changed = await http.patch(
        f"/v1/links/{link['id']}",
        json={"sync_interval_seconds": 3600, "full_resync_interval_seconds": 7 * 86400},
        headers=owner.headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["sync_interval_seconds"] == 3600
    assert changed.json()["full_resync_interval_seconds"] == 7 * 86400
    too_often = await http.patch(
        f"/v1/links/{link['id']}", json={"sync_interval_seconds": 5}, headers=owner.headers
    )
    assert "body.sync_interval_seconds" in [
        e["field"] for e in assert_problem(too_often, 422)["errors"]
    ]
    again = (await http.get(f"/v1/links/{link['id']}", headers=owner.headers)).json()
    assert again["sync_interval_seconds"] == 3600
    assert uuid.UUID(again["id"])
