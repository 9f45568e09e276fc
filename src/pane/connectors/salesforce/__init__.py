"""A vendor whose partner program runs on Salesforce.

Leads, campaigns, the price book (PricebookEntry with its Product2) and the vendor's deal
registration object are read with SOQL through the REST ``queryAll`` resource, so rows
deleted since the last sync (still in the recycle bin) come back with ``IsDeleted`` and
become tombstones; a deactivated price book entry is a tombstone too. Each answer batch
(up to 2,000 rows, ``nextRecordsUrl`` to the next) is one page. The cursor is the newest
``SystemModstamp`` read so far, to the second, ``2026-01-05T08:00:00Z``; the next read asks
for ``SystemModstamp >= cursor`` in that order, re-reading that second's rows (pane upserts).

The partner cost of a price item is a field the vendor keeps (``partner_cost_field``) or the
list price less a partner discount (``partner_discount_percent``, also given as
``discount``); with neither, it is left empty. ``register_deal`` creates a record of the deal
registration object, its fields named in ``deal_fields``.

Signing in is the connected app's client credentials flow or its JWT bearer flow; a token
Salesforce no longer honours (INVALID_SESSION_ID) is fetched anew once, by the auth flow.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ValidationError

from pane.connectors.base import AuthContext, Connector, ConnectorError
from pane.connectors.records import Action, MappedBatch, Page, Stream
from pane.connectors.salesforce.api import DealRejected, QueryRefused, SalesforceApi
from pane.connectors.salesforce.auth import JwtBearerAuth, build_auth
from pane.connectors.salesforce.config import (
    ClientCredentialsGrant,
    DealFields,
    JwtBearerGrant,
    SalesforceConfig,
    SalesforceCredentials,
)
from pane.connectors.salesforce.mapping import (
    DealRegistration,
    deal_body,
    modstamp,
    normalize,
    reason,
)
from pane.connectors.salesforce.soql import datetime_literal, parse_cursor, queries

__all__ = [
    "ClientCredentialsGrant",
    "DealFields",
    "DealRegistration",
    "DealRejected",
    "JwtBearerAuth",
    "JwtBearerGrant",
    "QueryRefused",
    "Salesforce",
    "SalesforceConfig",
    "SalesforceCredentials",
]

STREAM_NAMES = {
    Stream.LEADS: "leads",
    Stream.CAMPAIGNS: "campaigns",
    Stream.PRICE_LISTS: "the price book",
    Stream.DEALS: "deal registrations",
}


class Salesforce(Connector):
    name: ClassVar[str] = "salesforce"
    title: ClassVar[str] = "Salesforce"
    description: ClassVar[str] = (
        "A vendor whose partner program runs on Salesforce: leads, campaigns, its price book "
        "and deal registrations."
    )
    config_model = SalesforceConfig
    credentials_model = SalesforceCredentials
    streams: ClassVar[frozenset[Stream]] = frozenset(
        {Stream.LEADS, Stream.CAMPAIGNS, Stream.PRICE_LISTS, Stream.DEALS}
    )
    actions: ClassVar[frozenset[Action]] = frozenset({Action.REGISTER_DEAL})

    config: SalesforceConfig
    credentials: SalesforceCredentials

    def __init__(
        self, *, config: BaseModel, credentials: BaseModel, client: httpx.AsyncClient
    ) -> None:
        super().__init__(config=config, credentials=credentials, client=client)
        self.api = SalesforceApi(client, self.config)
        self.queries = queries(self.config)

    @classmethod
    def authenticate(
        cls, config: BaseModel, credentials: BaseModel, context: AuthContext
    ) -> httpx.Auth:
        settings = SalesforceConfig.model_validate(config)
        grant = SalesforceCredentials.model_validate(credentials).root
        return build_auth(settings, grant, context.redis)

    def _what(self, stream: Stream) -> str:
        sobject = self.queries[stream].sobject
        return f"the query for {STREAM_NAMES[stream]} ({sobject})"

    async def check(self) -> None:
        """Signs in, then reads one lead and one deal registration: the second proves the
        configured deal object and its fields exist and can be read."""
        for stream in (Stream.LEADS, Stream.DEALS):
            soql = self.queries[stream].soql(limit=1)
            # LIMIT 1: a single batch, done.
            async for _ in self.api.query(soql, what=self._what(stream), include_deleted=False):
                pass

    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        query = self.queries.get(stream)
        if query is None:
            raise ValueError(f"{self.name} does not read {stream}")
        try:
            since = parse_cursor(cursor)
        except ValueError as exc:
            raise ConnectorError(str(exc)) from exc
        newest = since
        async for batch in self.api.query(query.soql(since), what=self._what(stream)):
            # Mapping a batch (up to 2,000 rows) is CPU work: in a worker thread, so the event
            # loop meanwhile hands the previous page to the database.
            page = await asyncio.to_thread(self._normalized, stream, batch["records"], newest)
            newest = page.newest
            yield Page(
                stream=stream,
                records=page.records,
                failures=page.failures,
                cursor=datetime_literal(newest) if newest is not None else cursor,
            )

    def _normalized(self, stream: Stream, rows: list[Any], newest: datetime | None) -> MappedBatch:
        batch = MappedBatch(newest=newest)
        for row in rows:
            batch.add(
                normalize(stream, row, self.config),
                modstamp(row) if isinstance(row, dict) else None,
            )
        return batch

    async def act(self, action: Action, payload: dict[str, Any]) -> dict[str, Any]:
        if action is not Action.REGISTER_DEAL:
            return await super().act(action, payload)
        try:
            deal = DealRegistration.model_validate(payload)
            body = deal_body(deal, self.config)
        except ValidationError as exc:
            raise DealRejected(f"the deal is incomplete: {reason(exc)}") from exc
        except ValueError as exc:
            raise DealRejected(str(exc)) from exc
        created = await self.api.create(self.config.deal_object, body)
        return {"external_id": str(created["id"]), "raw": created}
