"""Plain factory helpers: real requests through the API, and direct inserts as the schema
owner where a capability (vendor sync) is not part of the API yet."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from pane.demo.manifests import demo_link
from pane.ids import new_id
from pane.services.security import new_api_key, token_digest

PASSWORD = "correct horse battery"
PROBLEM = "application/problem+json"
LINK_CONNECTOR = "csv_price_list"
# A partner portal's price file on the loopback server (tests/loopback.py); conftest fills in
# its address before any test runs, so links pass the connector's check.
PRICE_FILES: dict[str, str] = {"base": "http://127.0.0.1:9/unset"}
LINK_CONFIG = {
    "url": "",
    "columns": {"sku": "sku", "currency": "currency", "list_price": "price"},
}


def price_file(name: str, sep: str | None = None) -> str:
    url = f"{PRICE_FILES['base']}/{name}"
    return f"{url}?sep={quote(sep, safe='')}" if sep else url


@dataclass
class Account:
    email: str
    password: str
    user_id: uuid.UUID
    workspace_id: uuid.UUID
    access_token: str
    refresh_token: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.access_token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{secrets.token_hex(5)}@example.com"


@dataclass
class Api:
    http: httpx.AsyncClient
    admin_url: str

    async def signup(self, *, email: str | None = None, workspace: str = "Acme IT") -> Account:
        email = email or unique_email()
        response = await self.http.post(
            "/v1/auth/signup",
            json={
                "email": email,
                "password": PASSWORD,
                "name": "Test User",
                "workspace_name": workspace,
            },
        )
        assert response.status_code == 201, response.text
        body = response.json()
        return Account(
            email=email,
            password=PASSWORD,
            user_id=uuid.UUID(body["user"]["id"]),
            workspace_id=uuid.UUID(body["workspace"]["id"]),
            access_token=body["tokens"]["access_token"],
            refresh_token=body["tokens"]["refresh_token"],
        )

    async def login(
        self, email: str, password: str = PASSWORD, workspace_id: uuid.UUID | None = None
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"email": email, "password": password}
        if workspace_id is not None:
            payload["workspace_id"] = str(workspace_id)
        response = await self.http.post("/v1/auth/login", json=payload)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def member(self, owner: Account, role: str) -> Account:
        """A new user invited into ``owner``'s workspace with ``role``, signed in there."""
        newcomer = await self.signup(workspace="Newcomer's own")
        invited = await self.http.post(
            "/v1/invitations", json={"email": newcomer.email, "role": role}, headers=owner.headers
        )
        assert invited.status_code == 201, invited.text
        accepted = await self.http.post(
            "/v1/invitations/accept",
            json={"token": invited.json()["token"]},
            headers=newcomer.headers,
        )
        assert accepted.status_code == 200, accepted.text
        tokens = await self.login(newcomer.email, workspace_id=owner.workspace_id)
        return Account(
            email=newcomer.email,
            password=PASSWORD,
            user_id=newcomer.user_id,
            workspace_id=owner.workspace_id,
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
        )

    async def api_key(self, owner: Account, scopes: list[str]) -> str:
        response = await self.http.post(
            "/v1/api-keys", json={"name": "crm", "scopes": scopes}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        return str(response.json()["key"])

    async def link(
        self,
        owner: Account,
        vendor_id: uuid.UUID,
        credentials: dict[str, Any] | None = None,
        *,
        connector: str = LINK_CONNECTOR,
        config: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A link through the API (the connector's check included); the price file by default."""
        response = await self.http.post(
            "/v1/links",
            json={
                "vendor_id": str(vendor_id),
                "connector": connector,
                "config": LINK_CONFIG if config is None else config,
                "credentials": {"token": "s3cret-vendor-key"}
                if credentials is None
                else credentials,
            },
            headers=owner.headers,
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def link_new_vendor(
        self, owner: Account, connector: str, config: dict[str, Any], credentials: dict[str, Any]
    ) -> tuple[uuid.UUID, uuid.UUID]:
        """A vendor of the test's own, linked through ``connector``: (link id, vendor id)."""
        vendor = await self.new_vendor()
        link = await self.link(owner, vendor, credentials, connector=connector, config=config)
        return uuid.UUID(link["id"]), vendor

    async def link_demo_vendor(
        self, owner: Account, name: str, base: str
    ) -> tuple[uuid.UUID, uuid.UUID]:
        """A vendor of the test's own, linked as the demo links ``name`` of the simulator
        served at ``base``: (link id, vendor id)."""
        link = demo_link(name, base)
        return await self.link_new_vendor(
            owner, link["connector"], link["config"], link["credentials"]
        )

    async def _admin(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.admin_url)

    async def new_vendor(self, kind: str = "vendor") -> uuid.UUID:
        """A catalog vendor of the test's own, so vendor-principal views see only its rows."""
        vendor_id = new_id()
        connection = await self._admin()
        try:
            await connection.execute(
                "INSERT INTO vendors (id, slug, name, kind) VALUES ($1, $2, $3, $4)",
                vendor_id,
                f"test-{secrets.token_hex(5)}",
                f"Test Vendor {secrets.token_hex(3)}",
                kind,
            )
        finally:
            await connection.close()
        return vendor_id

    async def vendor_key(self, vendor_id: uuid.UUID) -> str:
        key, prefix = new_api_key()
        connection = await self._admin()
        try:
            await connection.execute(
                "INSERT INTO vendor_api_keys (vendor_id, id, name, prefix, key_hash)"
                " VALUES ($1, $2, 'integration', $3, $4)",
                vendor_id,
                new_id(),
                prefix,
                token_digest(key),
            )
        finally:
            await connection.close()
        return key

    async def seed_leads(
        self, workspace_id: uuid.UUID, vendor_id: uuid.UUID, count: int, **fields: Any
    ) -> list[uuid.UUID]:
        """Leads as a vendor sync would leave them (the sync engine arrives with connectors)."""
        ids = [new_id() for _ in range(count)]
        connection = await self._admin()
        try:
            await connection.execute(
                """
                INSERT INTO leads (workspace_id, id, vendor_id, external_id, first_name, last_name,
                                   email, company, country, status, score, raw)
                SELECT $1, id, $2, 'ext-' || id::text, $4, 'Lead ' || n, 'lead' || n || '@' || $5,
                       $6, 'DE', $7, 50, '{"origin": "seed"}'::jsonb
                FROM unnest($3::uuid[]) WITH ORDINALITY AS t(id, n)
                """,
                workspace_id,
                vendor_id,
                ids,
                fields.get("first_name", "Dana"),
                fields.get("domain", "customer.example"),
                fields.get("company", "Customer GmbH"),
                fields.get("status", "new"),
            )
        finally:
            await connection.close()
        return ids


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """An RFC 9457 problem of this status (and type), with a request id; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM
    body = response.json()
    assert isinstance(body, dict)
    assert body["type"].startswith("urn:pane:problem:")
    if slug is not None:
        assert body["type"] == f"urn:pane:problem:{slug}"
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert response.headers.get("x-request-id")
    return body


def error_fields(body: dict[str, Any]) -> list[str]:
    assert isinstance(body["errors"], list)
    assert body["errors"]
    for error in body["errors"]:
        assert set(error) == {"field", "message"}
        assert isinstance(error["message"], str)
        assert error["message"]
    return [error["field"] for error in body["errors"]]


async def seed_vendor_content(
    admin_url: str, workspace_id: uuid.UUID, vendor_id: uuid.UUID, link_id: uuid.UUID, marker: str
) -> None:
    """A campaign, a price list with one item, an asset, a deal, a cursor, a sync run, a
    row of a full resync in progress, a webhook the vendor pushed and a job waiting in the
    outbox, as a sync of ``link_id`` (and its vendor) would leave them."""
    connection = await asyncpg.connect(admin_url)
    try:
        price_list = new_id()
        await connection.execute(
            "INSERT INTO campaigns (workspace_id, id, vendor_id, external_id, name)"
            " VALUES ($1, $2, $3, $4, $5)",
            workspace_id,
            new_id(),
            vendor_id,
            f"C-{marker}",
            f"{marker} campaign",
        )
        await connection.execute(
            "INSERT INTO price_lists (workspace_id, id, vendor_id, external_id, name, currency)"
            " VALUES ($1, $2, $3, 'default', $4, 'EUR')",
            workspace_id,
            price_list,
            vendor_id,
            f"{marker} prices",
        )
        await connection.execute(
            "INSERT INTO price_items (workspace_id, id, vendor_id, price_list_id, external_id, sku,"
            " name, currency, list_price, partner_cost) VALUES ($1, $2, $3, $4, $5, $5, $6,"
            " 'EUR', 100, 80)",
            workspace_id,
            new_id(),
            vendor_id,
            price_list,
            f"SKU-{marker}",
            f"{marker} item",
        )
        await connection.execute(
            "INSERT INTO assets (workspace_id, id, vendor_id, external_id, title, url)"
            " VALUES ($1, $2, $3, $4, $5, 'https://vendor.example/datasheet.pdf')",
            workspace_id,
            new_id(),
            vendor_id,
            f"A-{marker}",
            f"{marker} datasheet",
        )
        await connection.execute(
            "INSERT INTO sync_cursors (workspace_id, link_id, stream, cursor)"
            " VALUES ($1, $2, 'leads', $3)",
            workspace_id,
            link_id,
            f"cursor-{marker}",
        )
        run_id = new_id()
        await connection.execute(
            "INSERT INTO sync_runs (workspace_id, id, link_id, trigger, streams)"
            " VALUES ($1, $2, $3, 'manual', '{leads}')",
            workspace_id,
            run_id,
            link_id,
        )
        await connection.execute(
            "INSERT INTO sync_seen (workspace_id, run_id, stream, external_id)"
            " VALUES ($1, $2, 'leads', $3)",
            workspace_id,
            run_id,
            f"L-{marker}",
        )
        await connection.execute(
            "INSERT INTO webhook_inbox (workspace_id, id, link_id, webhook_id, body, status)"
            " VALUES ($1, $2, $3, $4, $5, 'applied')",
            workspace_id,
            new_id(),
            link_id,
            f"msg-{marker}",
            ('{"data": {"leadId": "L-' + marker + '"}}').encode(),
        )
        # A job asked for in a commit; dated ahead so that no worker a test runs relays it.
        await connection.execute(
            "INSERT INTO outbox (workspace_id, id, job, job_id, kwargs, created_at)"
            " VALUES ($1, $2, 'sync_link', $3, $4, now() + interval '1 year')",
            workspace_id,
            new_id(),
            f"sync:{link_id}",
            '{"marker": "' + marker + '"}',
        )
        await connection.execute(
            "INSERT INTO deals (workspace_id, id, vendor_id, external_id, customer)"
            " VALUES ($1, $2, $3, $4, $5)",
            workspace_id,
            new_id(),
            vendor_id,
            f"D-{marker}",
            f"{marker} customer",
        )
    finally:
        await connection.close()


async def run_row(db: asyncpg.Connection, run_id: uuid.UUID) -> asyncpg.Record:
    return await db.fetchrow("SELECT * FROM sync_runs WHERE id = $1", run_id)


def other_redis_db(url: str, db: int) -> str:
    """The same Redis server, another database: a test's worker or scheduler sees only that
    test's jobs."""
    if url.startswith("unix://"):
        return f"{url.split('?')[0]}?db={db}"
    return f"{url.rsplit('/', 1)[0]}/{db}"
