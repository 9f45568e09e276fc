"""Connectors that each break one clause of the connector contract: Deal Desk (the third
party's connector) with one thing done wrong. tests/test_connector_testing.py runs the
contract on each in a pytest session of its own and expects it to fail, saying why."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr
from redis.asyncio import Redis

from pane.connectors.base import CheckFailed, CredentialsRejected
from pane.connectors.records import LeadRecord, Page, Stream
from pane.connectors.testing import Refusal, Vendor
from tests.third_party_connector.connector import DealDesk, DealDeskConfig
from tests.third_party_connector.test_contract import TestDealDeskContract, deal_desk


class Contract(TestDealDeskContract):
    """The contract outside pane's suite, where no conftest provides Redis."""

    @pytest.fixture
    def redis(self) -> Redis:
        return Redis()  # never connected: Deal Desk signs in with an API key


class TestKeepsTheContract(Contract):
    pass


class StreamsNamedByText(DealDesk):
    streams = frozenset({"deals"})


class TestStreamsNamedByText(Contract):
    connector_class = StreamsNamedByText


class _KeyInClearCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str


class KeyInClear(DealDesk):
    credentials_model = _KeyInClearCredentials


class TestKeyInClear(Contract):
    connector_class = KeyInClear


class _Proxy:
    """Nothing pydantic can describe as JSON Schema."""


class _UnrenderableConfig(DealDeskConfig):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    proxy: _Proxy | None = None


class UnrenderableConfig(DealDesk):
    config_model = _UnrenderableConfig


class TestUnrenderableConfig(Contract):
    connector_class = UnrenderableConfig


class _SecretInConfig(DealDeskConfig):
    webhook_secret: SecretStr = SecretStr("whsec-demo")


class SecretInConfig(DealDesk):
    config_model = _SecretInConfig


class TestSecretInConfig(Contract):
    connector_class = SecretInConfig


class CheckAcceptsAnything(DealDesk):
    async def check(self) -> None:
        pass


class TestCheckAcceptsAnything(Contract):
    connector_class = CheckAcceptsAnything


class CheckBlamesCredentials(DealDesk):
    async def check(self) -> None:
        try:
            await super().check()
        except CheckFailed as exc:
            raise CredentialsRejected(exc.reason) from exc


class TestCheckBlamesCredentials(Contract):
    connector_class = CheckBlamesCredentials


class CheckWithoutReason(DealDesk):
    async def check(self) -> None:
        try:
            await super().check()
        except CheckFailed as exc:
            raise type(exc)(" ") from exc


class TestCheckWithoutReason(Contract):
    connector_class = CheckWithoutReason


class CheckHangs(DealDesk):
    async def check(self) -> None:
        await asyncio.sleep(3600)


class TestCheckHangs(Contract):
    timeout_seconds = 0.2
    connector_class = CheckHangs


class TestNoCredentialsRefusal(Contract):
    @pytest.fixture
    def vendor(self) -> Vendor:
        working = deal_desk()
        wrong_partner = {**working.config, "partner_id": "P-0000"}
        return dataclasses.replace(working, refusals=[Refusal(CheckFailed, config=wrong_partner)])


class EndlessPages(DealDesk):
    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        while True:  # back to the first page after the last
            async for page in super().read(stream, cursor):
                yield page


class TestEndlessPages(Contract):
    connector_class = EndlessPages


class RecordsOfAnotherStream(DealDesk):
    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        async for page in super().read(stream, cursor):
            leads = [LeadRecord(external_id=r.external_id, raw=r.raw) for r in page.records]
            yield dataclasses.replace(page, records=leads)


class TestRecordsOfAnotherStream(Contract):
    connector_class = RecordsOfAnotherStream


class UnvalidatedRecords(DealDesk):
    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        async for page in super().read(stream, cursor):
            # model_copy does not validate: "euros" is no currency code
            wrong = [r.model_copy(update={"currency": "euros"}) for r in page.records]
            yield dataclasses.replace(page, records=wrong)


class TestUnvalidatedRecords(Contract):
    connector_class = UnvalidatedRecords


class RepeatedRecords(DealDesk):
    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        async for page in super().read(stream, cursor):
            yield page
            yield page


class TestRepeatedRecords(Contract):
    connector_class = RepeatedRecords


class CursorBackwards(DealDesk):
    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        pages = [page async for page in super().read(stream, cursor)]
        for page in reversed(pages):
            yield page


class TestCursorBackwards(Contract):
    connector_class = CursorBackwards


class CursorDropped(DealDesk):
    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        async for page in super().read(stream, cursor):
            yield page
        yield Page(stream=stream)  # an empty last page, without the cursor


class TestCursorDropped(Contract):
    connector_class = CursorDropped


class CursorNotSent(DealDesk):
    def query(self, since: datetime | None) -> dict[str, Any]:
        return super().query(None)


class TestCursorNotSent(Contract):
    connector_class = CursorNotSent


class CursorWithAMargin(DealDesk):
    def query(self, since: datetime | None) -> dict[str, Any]:
        return super().query(since - timedelta(hours=1) if since else None)


class TestCursorWithAMargin(Contract):
    connector_class = CursorWithAMargin


class DatabaseInRead(DealDesk):
    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        import asyncpg

        await asyncpg.connect("postgresql://pane@127.0.0.1:1/pane")
        async for page in super().read(stream, cursor):
            yield page


class TestDatabaseInRead(Contract):
    connector_class = DatabaseInRead
