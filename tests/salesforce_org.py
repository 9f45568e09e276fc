"""A Salesforce org in the REST API's documented shapes, for respx: the rows, batches and
tokens its resources answer with, and ``Org``, a small org that answers pane's queries."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx

ORG = "https://acme-partners.my.salesforce.com"
DATA = f"{ORG}/services/data/v60.0"
TOKEN_URL = f"{ORG}/services/oauth2/token"
NEXT = "/services/data/v60.0/query/01gD0000002HU6KIAW-2000"


def client_credentials() -> dict[str, str]:
    # A connected app of the caller's own, so no other test's cached token is reused.
    return {
        "grant": "client_credentials",
        "client_id": f"3MVG9{uuid.uuid4().hex}",
        "client_secret": "consumer-secret",
    }


def token_body(access_token: str = "00D5g000004ABCD!tok-1") -> dict[str, str]:
    return {
        "access_token": access_token,
        "instance_url": ORG,
        "id": "https://login.salesforce.com/id/00D5g000004ABCDEAA/0055g00000AbCdEAAZ",
        "token_type": "Bearer",
        "issued_at": "1767600000000",
        "signature": "pQ3mDbTDBy3UHxDp0Xc4OiU0nYp7mBJ8Rm7L6pXWbdw=",
    }


def sobject_row(sobject: str, record_id: str, stamp: str, **fields: Any) -> dict[str, Any]:
    return {
        "attributes": {
            "type": sobject,
            "url": f"/services/data/v60.0/sobjects/{sobject}/{record_id}",
        },
        "Id": record_id,
        "IsDeleted": False,
        "SystemModstamp": stamp,
        **fields,
    }


def lead_row(record_id: str, stamp: str, **fields: Any) -> dict[str, Any]:
    return sobject_row(
        "Lead",
        record_id,
        stamp,
        FirstName="Ada",
        LastName="Lovelace",
        Email="ada@example.com",
        Phone="+44 20 7946 0000",
        Company="Analytical Engines Ltd",
        Title="CTO",
        Country="United Kingdom",
        Status="Open - Not Contacted",
        LeadSource="Partner Referral",
        CreatedDate="2026-01-02T10:00:00.000+0000",
        **fields,
    )


def query_batch(records: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"totalSize": len(records), "done": next_url is None}
    if next_url:
        body["nextRecordsUrl"] = next_url
    body["records"] = records
    return body


def posted_form(request: httpx.Request) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(request.content.decode()).items()}


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value)


class Org:
    """An org holding ``rows`` (by sObject), signed in to with one connected app's client
    credentials. ``query`` and ``queryAll`` answer the SOQL pane sends, as far as pane's
    queries need: the object, ``SystemModstamp >=``, ``LIMIT``, in ``SystemModstamp, Id``
    order, ``batch_size`` rows a batch linked by ``nextRecordsUrl``."""

    def __init__(self, rows: Mapping[str, list[dict[str, Any]]], *, batch_size: int = 2) -> None:
        self.rows = rows
        self.batch_size = batch_size
        self.credentials = client_credentials()
        self.access_token = token_body()["access_token"]
        self.pending: dict[str, list[list[dict[str, Any]]]] = {}
        self.router = respx.Router()
        self.router.post(TOKEN_URL).mock(side_effect=self._token)
        self.router.get(f"{DATA}/query").mock(side_effect=partial(self._query, deleted=False))
        self.router.get(f"{DATA}/queryAll").mock(side_effect=partial(self._query, deleted=True))
        self.router.get(url__startswith=f"{DATA}/query/").mock(side_effect=self._next_batch)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.router.async_handler)

    def _token(self, request: httpx.Request) -> httpx.Response:
        sent = posted_form(request)
        if (sent.get("client_id"), sent.get("client_secret")) != (
            self.credentials["client_id"],
            self.credentials["client_secret"],
        ):
            return httpx.Response(
                400, json={"error": "invalid_client", "error_description": "invalid client"}
            )
        return httpx.Response(200, json=token_body(self.access_token))

    def _refused(self, request: httpx.Request) -> httpx.Response | None:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            expired = {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
            return httpx.Response(401, json=[expired])
        return None

    def _query(self, request: httpx.Request, *, deleted: bool) -> httpx.Response:
        if refused := self._refused(request):
            return refused
        soql = request.url.params["q"]
        found = re.search(r"\bFROM (\w+)", soql)
        assert found, soql
        sobject = found[1]
        if sobject not in self.rows:
            problem = {
                "message": f"sObject type '{sobject}' is not supported.",
                "errorCode": "INVALID_TYPE",
            }
            return httpx.Response(400, json=[problem])
        rows = [r for r in self.rows[sobject] if deleted or not r["IsDeleted"]]
        if since := re.search(r"SystemModstamp >= (\S+)", soql):
            rows = [r for r in rows if _stamp(r["SystemModstamp"]) >= _stamp(since[1])]
        rows.sort(key=lambda r: (_stamp(r["SystemModstamp"]), r["Id"]))
        if limit := re.search(r"LIMIT (\d+)", soql):
            rows = rows[: int(limit[1])]
        size = self.batch_size
        return self._answer([rows[at : at + size] for at in range(0, len(rows), size)] or [[]])

    def _next_batch(self, request: httpx.Request) -> httpx.Response:
        if refused := self._refused(request):
            return refused
        return self._answer(self.pending.pop(request.url.path.rsplit("/", 1)[-1]))

    def _answer(self, batches: list[list[dict[str, Any]]]) -> httpx.Response:
        first, *rest = batches
        if not rest:
            return httpx.Response(200, json=query_batch(first))
        locator = f"01gD0000002HU6KIAW-{uuid.uuid4().hex[:8]}"
        self.pending[locator] = rest
        return httpx.Response(200, json=query_batch(first, f"/services/data/v60.0/query/{locator}"))
