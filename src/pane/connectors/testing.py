"""The connector contract: one pytest class that every connector passes, pane's own and a
third party's, run from the connector's own test suite.

    from pane.connectors.base import CheckFailed, CredentialsRejected
    from pane.connectors.testing import ConnectorContract, Refusal, Vendor

    class TestMyVendorContract(ConnectorContract):
        connector_class = MyVendor

        @pytest.fixture
        def vendor(self) -> Vendor:
            config = {"base_url": "https://api.my-vendor.example", "partner_id": "P-0042"}
            return Vendor(
                config=config,
                credentials={"api_key": "k-1"},
                refusals=[
                    Refusal(CredentialsRejected, credentials={"api_key": "revoked"}),
                    Refusal(CheckFailed, config={**config, "partner_id": "P-0000"}),
                ],
                transport=httpx.MockTransport(my_vendor_router().async_handler),
            )

The subclass names the connector and serves its vendor: a transport (a respx router on the
shapes the vendor documents, an ``httpx.ASGITransport``) or, with ``transport=None``, the
network (a server on loopback). The vendor must not change while the contract reads it, and
every stream the link reads must serve records. The suite also provides a ``redis`` fixture
(a ``redis.asyncio.Redis``): connectors cache OAuth tokens there, as they do in pane.

The contract builds each connector the way pane's engine does (config and credentials
validated, the client with the connector's ``authenticate()``, retries (``open_connector``),
private targets allowed), counts its requests and pages, and fails the test if it opens a
database connection. Its async tests are marked for pytest-asyncio, so they run in strict
mode as well as auto.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, NoReturn, TypeVar

import httpx
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from pane.connectors.base import AuthContext, CheckFailed, Connector, CredentialsRejected
from pane.connectors.opening import open_connector
from pane.connectors.records import RECORD_TYPES, Action, Page, Record, RecordFailure, Stream

__all__ = [
    "FORBIDDEN_MODULES",
    "ConnectorContract",
    "Harness",
    "Refusal",
    "Vendor",
    "leaked_modules",
]

# What a connector's module must not load: the database, and the layers of pane that use it.
FORBIDDEN_MODULES = (
    "pane.db",
    "pane.services",
    "pane.models",
    "pane.api",
    "sqlalchemy",
    "asyncpg",
    "fastapi",
)
# Where a connection to a database starts. asyncpg's connect is what SQLAlchemy's asyncpg
# dialect and asyncpg's pools call in the end; the engine factories are refused up front.
DATABASE_ENTRY_POINTS = (
    "asyncpg.connect",
    "asyncpg.connection.connect",
    "asyncpg.create_pool",
    "asyncpg.pool.create_pool",
    "sqlalchemy.create_engine",
    "sqlalchemy.engine.create_engine",
    "sqlalchemy.engine.create.create_engine",
    "sqlalchemy.ext.asyncio.create_async_engine",
    "sqlalchemy.ext.asyncio.engine.create_async_engine",
)
# Credential fields whose names say they hold a secret: the link form must mask them.
SECRET_NAME = re.compile(r"secret|password|passphrase|token|key|assertion", re.IGNORECASE)
RETRY_WAIT_SECONDS = 0.01

T = TypeVar("T")


@dataclass(frozen=True)
class Refusal:
    """A link the vendor refuses: ``check()`` (or ``authenticate()``) must raise ``raises``
    with a reason. ``config`` or ``credentials`` left out are the working link's."""

    raises: type[CheckFailed]
    config: Mapping[str, Any] | None = None
    credentials: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Vendor:
    """The vendor the contract reads: a link it accepts, links it refuses, and how it is
    reached (``transport=None``: over the network)."""

    config: Mapping[str, Any]
    credentials: Mapping[str, Any]
    refusals: Sequence[Refusal]
    transport: httpx.AsyncBaseTransport | None = None


class _Budget(httpx.AsyncBaseTransport):
    """Counts a connector's requests, retries included, and fails the test past the budget:
    a read that pages for ever stops here instead of hanging the suite."""

    def __init__(self, vendor: httpx.AsyncBaseTransport | None, limit: int) -> None:
        self.inner = vendor or httpx.AsyncHTTPTransport()
        self.owned = vendor is None  # the fixture's own transport is the fixture's to close
        self.limit = limit
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.sent > self.limit:
            _fail(
                f"more than {self.limit} requests to the vendor (the last: {request.method} "
                f"{request.url.copy_with(query=None)}): does its pagination end?"
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        if self.owned:
            await self.inner.aclose()


async def _keep_nothing(_: dict[str, Any]) -> None:
    """The contract's links are never saved, so rotated credentials are not either."""


class Harness:
    """What the contract's tests use: connectors built the way pane's engine builds them, read
    within the contract's bounds."""

    def __init__(self, contract: ConnectorContract, vendor: Vendor, redis: Redis) -> None:
        self.contract = contract
        self.connector_class = contract.connector_class
        self.vendor = vendor
        self.redis = redis
        self.holder = f"contract-{uuid.uuid4().hex}"

    @asynccontextmanager
    async def connector(
        self,
        config: Mapping[str, Any] | None = None,
        credentials: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[Connector]:
        """The connector for a link (the vendor's working one by default), with its client."""
        context = AuthContext(redis=self.redis, holder=self.holder, save_credentials=_keep_nothing)
        async with open_connector(
            self.connector_class,
            config=self.vendor.config if config is None else config,
            credentials=self.vendor.credentials if credentials is None else credentials,
            context=context,
            allow_private=True,
            transport=_Budget(self.vendor.transport, self.contract.max_requests),
            initial_wait=RETRY_WAIT_SECONDS,
        ) as connector:
            yield connector

    async def within_time(self, work: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.contract.timeout_seconds):
                return await work
        except TimeoutError:
            _fail(f"the connector did not finish within {self.contract.timeout_seconds} s")

    async def read(self, connector: Connector, stream: Stream, cursor: str | None) -> list[Page]:
        """Every page of ``stream`` after ``cursor``; fails past ``max_pages``."""
        pages: list[Page] = []
        reading = connector.read(stream, cursor)

        async def collect() -> None:
            async for page in reading:
                pages.append(page)
                if len(pages) > self.contract.max_pages:
                    _fail(f"{stream}: more than {self.contract.max_pages} pages: does it end?")

        try:
            await self.within_time(collect())
        finally:
            if isinstance(reading, AsyncGenerator):
                await reading.aclose()
        return pages

    async def read_all(
        self, cursors: Mapping[Stream, str] | None = None
    ) -> dict[Stream, list[Page]]:
        """Each stream of ``cursors`` read after its cursor, or (None) every stream the link
        reads from the start, as one sync run does: one connector, stream after stream."""
        async with self.connector() as connector:
            streams = (
                list(cursors) if cursors is not None else connector.streams_for(connector.config)
            )
            return {
                stream: await self.read(connector, stream, (cursors or {}).get(stream))
                for stream in sorted(streams)
            }


class ConnectorContract:
    """What every connector must do. Subclass it in a ``Test…`` class, set
    ``connector_class`` and provide the ``vendor`` fixture (see the module's docstring)."""

    connector_class: ClassVar[type[Connector]]
    # Bounds a vendor fixture of a few pages stays far below; raise them for a bigger one.
    max_pages: ClassVar[int] = 100
    max_requests: ClassVar[int] = 500
    timeout_seconds: ClassVar[float] = 60.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        connector = getattr(cls, "connector_class", None)
        if not (isinstance(connector, type) and issubclass(connector, Connector)):
            raise TypeError(f"{cls.__name__} must set connector_class to a pane Connector")
        if not hasattr(cls, "vendor"):
            raise TypeError(f"{cls.__name__} must provide a vendor fixture returning a Vendor")

    def cursor_position(self, cursor: str) -> Any:
        """Where ``cursor`` stands, comparable with ``<``: cursors only ever move forward in
        this order. An ISO 8601 time with its offset by default; override it for other
        cursors, returning None for those with no order (a file's version, say)."""
        try:
            moment = datetime.fromisoformat(cursor)
        except ValueError:
            _fail(f"the cursor {cursor!r} is not an ISO 8601 time: override cursor_position")
        if moment.tzinfo is None:
            _fail(f"the cursor {cursor!r} has no UTC offset: it cannot be ordered")
        return moment

    @pytest.fixture
    def contract(self, vendor: Vendor, redis: Redis, monkeypatch: pytest.MonkeyPatch) -> Harness:
        # After the fixtures are set up: they may use a database, the connector may not.
        for target in DATABASE_ENTRY_POINTS:
            monkeypatch.setattr(target, _refuse_database)
        return Harness(self, vendor, redis)

    def test_declares_streams_and_actions(self, vendor: Vendor) -> None:
        cls = self.connector_class
        assert cls.name, "the connector has no name"
        assert cls.title, "the connector has no title"
        assert cls.streams, "the connector declares no streams"
        strange = [stream for stream in cls.streams if not isinstance(stream, Stream)]
        assert not strange, f"streams that are not a pane Stream: {strange}"
        odd = [action for action in cls.actions if not isinstance(action, Action)]
        assert not odd, f"actions that are not a pane Action: {odd}"
        read = cls.streams_for(cls.config_model.model_validate(vendor.config))
        assert read, "the working link reads no stream"
        assert read <= cls.streams, (
            f"the link reads undeclared streams: {sorted(read - cls.streams)}"
        )

    def test_describes_its_link_form_as_json_schema(self) -> None:
        described = self.connector_class.describe()
        json.dumps(described)  # what GET /v1/connectors sends the SPA
        assert described["name"] == self.connector_class.name
        for key in ("config_schema", "credentials_schema"):
            schema = described[key]
            assert isinstance(schema, dict), f"{key} is not a JSON Schema object"
            assert {"type", "$ref", "oneOf", "anyOf", "allOf"} & set(schema), (
                f"{key} says nothing about the value: {schema}"
            )

    def test_marks_secret_credentials_secret(self) -> None:
        schema = self.connector_class.credentials_model.model_json_schema()
        fields = _properties(schema)
        if not fields:
            pytest.skip("the connector takes no credentials")
        secret = {name for name, field in fields if _secret(field, schema)}
        assert secret, (
            "no credential is marked secret (a pydantic SecretStr renders as format: password)"
        )
        exposed = sorted({name for name, _ in fields if SECRET_NAME.search(name)} - secret)
        assert not exposed, f"credentials shown in clear on the link form: {exposed}"

    def test_a_stored_config_reads_back_the_same(self, vendor: Vendor) -> None:
        model = self.connector_class.config_model
        config = model.model_validate(vendor.config)
        # A link keeps its config as this JSON, and every sync reads it back from there.
        stored = config.model_dump(mode="json")
        assert model.model_validate(stored) == config, f"stored as {stored}"

    @pytest.mark.asyncio
    async def test_check_passes_with_the_working_link(self, contract: Harness) -> None:
        async with contract.connector() as connector:
            await contract.within_time(connector.check())

    @pytest.mark.asyncio
    async def test_check_refuses_links_with_the_declared_error_and_a_reason(
        self, contract: Harness
    ) -> None:
        refusals = contract.vendor.refusals
        assert refusals, "the vendor fixture declares no link the vendor refuses"
        if _properties(self.connector_class.credentials_model.model_json_schema()):
            assert any(issubclass(r.raises, CredentialsRejected) for r in refusals), (
                "no refusal shows credentials the vendor rejects (CredentialsRejected)"
            )
        for refusal in refusals:
            try:
                async with contract.connector(refusal.config, refusal.credentials) as connector:
                    await contract.within_time(connector.check())
            except CheckFailed as refused:
                error = refused
            else:
                _fail(f"check() accepted a link the vendor refuses: {refusal}")
            assert isinstance(error, refusal.raises), (
                f"{type(error).__name__} ({error.reason!r}), not {refusal.raises.__name__}, "
                f"for {refusal}"
            )
            if not issubclass(refusal.raises, CredentialsRejected):
                assert not isinstance(error, CredentialsRejected), (
                    f"credentials rejected ({error.reason!r}) for {refusal}: the link would "
                    "wait for new credentials that will not help"
                )
            assert error.reason.strip(), f"{type(error).__name__} without a reason for {refusal}"

    @pytest.mark.asyncio
    async def test_reads_every_stream_to_an_end(self, contract: Harness) -> None:
        read = await contract.read_all()
        for stream, pages in read.items():
            assert all(isinstance(page, Page) for page in pages), f"{stream}: not a Page"
            assert {page.stream for page in pages} <= {stream}, f"{stream}: pages of others"

    @pytest.mark.asyncio
    async def test_records_are_the_streams_normalized_records(self, contract: Harness) -> None:
        for stream, pages in (await contract.read_all()).items():
            kind = RECORD_TYPES[stream]
            records = _records(pages)
            assert records, f"{stream}: the vendor fixture serves no records, nothing to check"
            for record in records:
                assert isinstance(record, kind), (
                    f"{stream}: a {type(record).__name__}, not a {kind.__name__}"
                )
                try:
                    again = kind.model_validate(record.model_dump())
                except ValidationError as exc:
                    _fail(f"{stream} {record.external_id!r} is not a valid {kind.__name__}: {exc}")
                assert again == record, f"{stream} {record.external_id!r} changes when validated"
            for failure in (failure for page in pages for failure in page.failures):
                assert isinstance(failure, RecordFailure), f"{stream}: {failure!r}"
                assert failure.reason.strip(), f"{stream}: a failure without a reason"

    @pytest.mark.asyncio
    async def test_external_ids_are_unique_per_stream(self, contract: Harness) -> None:
        for stream, pages in (await contract.read_all()).items():
            counted = Counter(record.external_id for record in _records(pages))
            twice = sorted(external_id for external_id, seen in counted.items() if seen > 1)
            assert not twice, f"{stream}: read more than once: {twice[:10]}"

    @pytest.mark.asyncio
    async def test_cursors_only_move_forward(self, contract: Harness) -> None:
        first = await contract.read_all()
        for stream, pages in first.items():
            self._forward(stream, None, pages)
        cursors = {
            stream: pages[-1].cursor
            for stream, pages in first.items()
            if pages and pages[-1].cursor
        }
        if not cursors:
            pytest.skip("no stream ends with a cursor: every sync reads everything")
        # A later sync: a new connector, resumed from the cursors the engine stored.
        again = await contract.read_all(cursors)
        for stream, cursor in cursors.items():
            self._forward(stream, cursor, again[stream])
            position = self.cursor_position(cursor)
            _only_the_boundary(stream, position, _records(first[stream]), _records(again[stream]))

    def test_loads_nothing_of_the_database_or_web_layers(self) -> None:
        module = self.connector_class.__module__
        leaked = leaked_modules(module)
        assert not leaked, (
            f"importing {module} loads {', '.join(leaked)}: a connector never touches the "
            f"database (python -X importtime -c 'import {module}' shows what imports them)"
        )

    def _forward(self, stream: Stream, start: str | None, pages: list[Page]) -> None:
        previous = start
        for number, page in enumerate(pages, 1):
            if page.cursor is None:
                assert previous is None, (
                    f"{stream}: page {number} drops the cursor {previous!r}; the next sync "
                    "would read everything again"
                )
            elif previous is not None and page.cursor != previous:
                now, before = self.cursor_position(page.cursor), self.cursor_position(previous)
                assert now is None or before is None or now >= before, (
                    f"{stream}: page {number}'s cursor {page.cursor!r} is behind {previous!r}"
                )
            previous = page.cursor


def leaked_modules(module: str) -> list[str]:
    """The modules of ``FORBIDDEN_MODULES`` that importing ``module`` loads, in a fresh
    interpreter on this one's path."""
    code = f"import importlib, sys; importlib.import_module({module!r}); print(*sys.modules)"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    done = subprocess.run(  # noqa: S603 - this interpreter, running code written above
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        _fail(f"importing {module} failed in a fresh interpreter:\n{done.stderr}")
    loaded = done.stdout.split()
    return [
        banned
        for banned in FORBIDDEN_MODULES
        if any(name == banned or name.startswith(f"{banned}.") for name in loaded)
    ]


def _only_the_boundary(
    stream: Stream, position: Any, everything: list[Record], again: list[Record]
) -> None:
    """Reading again from the last cursor, nothing having changed, brings back at most the
    records at the boundary (changed no earlier than the cursor), never the stream again."""
    known = {record.external_id for record in everything}
    back = {record.external_id for record in again}
    unknown = sorted(back - known)
    assert not unknown, f"{stream}: reading again brought records never read: {unknown[:10]}"
    if back == known and len(everything) > 1:
        times = {record.updated_at for record in everything}
        all_at_the_boundary = len(times) == 1 and None not in times
        assert all_at_the_boundary, (
            f"{stream}: reading again from the last cursor read all {len(everything)} records again"
        )
    if isinstance(position, datetime):
        older = sorted(
            record.external_id
            for record in again
            if record.updated_at is not None and record.updated_at < position
        )
        assert not older, (
            f"{stream}: reading again from the cursor ({position.isoformat()}) brought back "
            f"{older[:10]}, changed before it: more than the boundary"
        )


def _records(pages: list[Page]) -> list[Record]:
    return [record for page in pages for record in page.records]


def _properties(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every property of the schema and of the models it defines (a union's members)."""
    models = [schema, *schema.get("$defs", {}).values()]
    return [
        (name, field) for model in models for name, field in model.get("properties", {}).items()
    ]


def _secret(field: dict[str, Any], schema: dict[str, Any]) -> bool:
    if "$ref" in field:
        return _secret(schema["$defs"][field["$ref"].rsplit("/", 1)[-1]], schema)
    for combined in ("anyOf", "oneOf"):
        if combined in field:
            branches = [branch for branch in field[combined] if branch.get("type") != "null"]
            return bool(branches) and all(_secret(branch, schema) for branch in branches)
    return field.get("format") == "password" or field.get("writeOnly") is True


def _refuse_database(*args: Any, **kwargs: Any) -> NoReturn:
    _fail("the connector opened a database connection: connectors never touch the database")


def _fail(message: str) -> NoReturn:
    # pytest's failure is a BaseException: a connector's ``except Exception`` cannot swallow it.
    pytest.fail(message, pytrace=False)
