"""Deal Desk: a fictional vendor's deal registration API, read with pane's connector SDK only.

A partner's deals come in change order, ``updated_since`` inclusive, behind an opaque
``next_page_token``; the cursor is the newest change read so far.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    StringConstraints,
    ValidationError,
)

from pane.connectors.base import AuthContext, CheckFailed, Connector, CredentialsRejected
from pane.connectors.http.auth import HeaderKeyAuth
from pane.connectors.records import DealRecord, Page, Record, RecordFailure, Stream


class DealDeskConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = HttpUrl("https://api.dealdesk.example/v1")
    partner_id: Annotated[str, StringConstraints(pattern=r"^P-\d{4}$")]
    page_size: Annotated[int, Field(ge=1, le=100)] = 100


class DealDeskCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr


def _refuse(response: httpx.Response) -> None:
    if response.status_code in (401, 403):
        raise CredentialsRejected(f"Deal Desk refused the API key ({response.status_code})")
    if response.status_code >= 400:
        said = response.json().get("message", response.reason_phrase)
        raise CheckFailed(f"Deal Desk answered {response.status_code}: {said}")


def _deal(item: dict[str, Any]) -> DealRecord:
    value = item.get("value") or {}
    return DealRecord(
        external_id=item["id"],
        updated_at=item["updated_at"],
        deleted=item.get("archived", False),
        raw=item,
        customer=item["customer"]["name"],
        status=item.get("stage"),
        amount=value.get("amount"),
        currency=value.get("currency"),
        close_on=item.get("expected_close"),
    )


class DealDesk(Connector):
    name: ClassVar[str] = "dealdesk"
    title: ClassVar[str] = "Deal Desk"
    description: ClassVar[str] = "Deal registrations from the Deal Desk partner API."
    config_model = DealDeskConfig
    credentials_model = DealDeskCredentials
    streams: ClassVar[frozenset[Stream]] = frozenset({Stream.DEALS})

    config: DealDeskConfig
    credentials: DealDeskCredentials

    @classmethod
    def authenticate(
        cls, config: BaseModel, credentials: BaseModel, context: AuthContext
    ) -> httpx.Auth:
        assert isinstance(credentials, DealDeskCredentials)
        return HeaderKeyAuth("Authorization", credentials.api_key.get_secret_value(), "Bearer ")

    @property
    def partner_url(self) -> str:
        return f"{str(self.config.base_url).rstrip('/')}/partners/{self.config.partner_id}"

    def query(self, since: datetime | None) -> dict[str, Any]:
        """The first page's query: deals changed at or after ``since``."""
        params: dict[str, Any] = {"limit": self.config.page_size}
        if since is not None:
            params["updated_since"] = since.isoformat()
        return params

    async def check(self) -> None:
        _refuse(await self.client.get(self.partner_url))

    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        newest = datetime.fromisoformat(cursor) if cursor else None
        params = self.query(newest)
        while True:
            response = await self.client.get(f"{self.partner_url}/deals", params=params)
            _refuse(response)
            body = response.json()
            records: list[Record] = []
            failures: list[RecordFailure] = []
            for item in body["deals"]:
                try:
                    deal = _deal(item)
                except (ValidationError, KeyError, TypeError) as exc:
                    failures.append(RecordFailure(raw=item, reason=str(exc)))
                    continue
                records.append(deal)
                if deal.updated_at and (newest is None or deal.updated_at > newest):
                    newest = deal.updated_at
            yield Page(
                stream=stream,
                records=records,
                failures=failures,
                cursor=newest.isoformat() if newest else None,
            )
            if not body.get("next_page_token"):
                return
            params = {**params, "page_token": body["next_page_token"]}
