"""A vendor described by a manifest instead of code (see ``manifest.py`` for its shape).

The link's config is ``{"manifest": {...}, "base_url": optional override}``; its credentials
are whichever of ``api_key``, ``token``, ``username``, ``password``, ``client_id``,
``client_secret`` and ``refresh_token`` the manifest's auth needs. Each stream is read page by
page, each page mapped and yielded before the next is fetched, so memory stays flat however
long the stream. Incremental streams carry as cursor the highest change time seen (ISO 8601).

A manifest with a ``webhooks`` section also takes records the vendor pushes: signed as its
``signature`` says, found in the body at each ``records`` entry's path and mapped with that
stream's fields, exactly as a read would map them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, ClassVar

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from pane.connectors.base import (
    AuthContext,
    CheckFailed,
    Connector,
    ConnectorError,
    CredentialsRejected,
)
from pane.connectors.generic_rest.manifest import (
    ApiKeyAuth,
    BasicAuth,
    ClientCredentialsAuth,
    GenericRestConfig,
    HmacSha256Signature,
    Manifest,
    RefreshTokenAuth,
    StreamSpec,
    WebhookRecords,
)
from pane.connectors.generic_rest.mapping import (
    Mapper,
    compile_path,
    cursor_text,
    cursor_time,
    format_datetime,
    get_path,
)
from pane.connectors.generic_rest.paginators import PageRequest, PaginationLoop, paginator_for
from pane.connectors.http import auth as flows
from pane.connectors.records import MappedBatch, Page, Stream
from pane.connectors.webhooks import (
    HmacSha256,
    StandardWebhooks,
    WebhookScheme,
    WebhookUnreadable,
)

__all__ = [
    "GenericRest",
    "GenericRestConfig",
    "GenericRestCredentials",
    "Manifest",
    "PaginationLoop",
]

CHECK_PAGE_SIZE = 5
SNIPPET = 300


class GenericRestCredentials(BaseModel):
    """Every secret a manifest's auth may need; which ones it does need depends on the
    manifest, and a missing one is named when the link is used."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = Field(
        default=None, description="Replaced in the link when the vendor rotates it."
    )

    def plain(self) -> dict[str, str]:
        """Every credential that is set, secrets revealed (to save them back in the link)."""
        return {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in self
            if value is not None
        }

    def secret(self, name: str) -> str:
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def required_credentials(manifest: Manifest) -> list[str]:
    auth = manifest.auth
    if isinstance(auth, ApiKeyAuth):
        return [auth.credential]
    if isinstance(auth, BasicAuth):
        return ["username", "password"]
    if isinstance(auth, ClientCredentialsAuth):
        return ["client_id", "client_secret"]
    if isinstance(auth, RefreshTokenAuth):
        return ["client_id", "refresh_token"]
    return []


def _vendor_message(response: httpx.Response) -> str:
    """What the vendor said about an error, short: its JSON error field or its text."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, dict):
        for key in ("error_description", "message", "detail", "error", "title", "errors"):
            said = body.get(key)
            if isinstance(said, dict):
                said = said.get("message") or said.get("detail") or said
            if said:
                return str(said)[:SNIPPET]
    text = " ".join(response.text.split())
    return text[:SNIPPET] or "no message"


def _status(response: httpx.Response) -> str:
    return f"{response.status_code} {response.reason_phrase}".strip()


class GenericRest(Connector):
    name: ClassVar[str] = "generic_rest"
    title: ClassVar[str] = "REST API (manifest)"
    description: ClassVar[str] = (
        "Any vendor REST API described by a manifest: base URL, auth, and per stream the "
        "path, pagination, record path and field mapping."
    )
    config_model = GenericRestConfig
    credentials_model = GenericRestCredentials
    # What a manifest can declare; a stream the link's manifest does not declare reads empty.
    streams: ClassVar[frozenset[Stream]] = frozenset(Stream)
    # Whether a link does depends on its manifest's webhooks section.
    webhooks: ClassVar[bool] = True

    config: GenericRestConfig
    credentials: GenericRestCredentials

    @classmethod
    def missing_credentials(cls, config: BaseModel, credentials: BaseModel) -> list[str]:
        """The credentials the manifest's auth needs that the link does not have."""
        assert isinstance(config, GenericRestConfig)
        assert isinstance(credentials, GenericRestCredentials)
        return [
            name
            for name in required_credentials(config.manifest)
            if getattr(credentials, name) is None
        ]

    @classmethod
    def _refuse_missing(cls, config: BaseModel, credentials: BaseModel) -> None:
        missing = cls.missing_credentials(config, credentials)
        if missing:
            assert isinstance(config, GenericRestConfig)
            raise CredentialsRejected(
                f"the manifest's {config.manifest.auth.type} auth needs the credential"
                f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}, which the link lacks"
            )

    @classmethod
    def authenticate(
        cls, config: BaseModel, credentials: BaseModel, context: AuthContext
    ) -> httpx.Auth | None:
        cls._refuse_missing(config, credentials)
        assert isinstance(config, GenericRestConfig)
        assert isinstance(credentials, GenericRestCredentials)
        auth = config.manifest.auth
        if isinstance(auth, ApiKeyAuth):
            key = credentials.secret(auth.credential)
            if auth.location == "query":
                return flows.QueryKeyAuth(auth.name, key)
            return flows.HeaderKeyAuth(auth.name, key, auth.prefix)
        if isinstance(auth, BasicAuth):
            return httpx.BasicAuth(credentials.secret("username"), credentials.secret("password"))
        if isinstance(auth, ClientCredentialsAuth):
            return flows.ClientCredentialsAuth(
                token_url=_absolute(config.root, auth.token_url),
                client_id=credentials.secret("client_id"),
                client_secret=credentials.secret("client_secret"),
                redis=context.redis,
                scope=auth.scope,
            )
        if isinstance(auth, RefreshTokenAuth):
            kept = credentials.plain()

            async def save_refresh_token(rotated: str) -> None:
                kept["refresh_token"] = rotated
                await context.save_credentials(dict(kept))

            return flows.RefreshTokenAuth(
                token_url=_absolute(config.root, auth.token_url),
                client_id=credentials.secret("client_id"),
                client_secret=(
                    credentials.secret("client_secret") if credentials.client_secret else None
                ),
                refresh_token=credentials.secret("refresh_token"),
                redis=context.redis,
                save_refresh_token=save_refresh_token,
                holder=context.holder,
            )
        return None

    @classmethod
    def streams_for(cls, config: BaseModel) -> frozenset[Stream]:
        assert isinstance(config, GenericRestConfig)
        return frozenset(config.manifest.streams)

    @classmethod
    def webhook_scheme(cls, config: BaseModel) -> WebhookScheme | None:
        assert isinstance(config, GenericRestConfig)
        webhooks = config.manifest.webhooks
        if webhooks is None:
            return None
        signature = webhooks.signature
        if isinstance(signature, HmacSha256Signature):
            return HmacSha256(
                header=signature.header,
                prefix=signature.prefix,
                encoding=signature.encoding,
                id_header=signature.id_header,
            )
        return StandardWebhooks(tolerance_seconds=signature.tolerance_seconds)

    @classmethod
    def webhook_pages(cls, config: BaseModel, body: bytes) -> list[Page]:
        """A page per stream the body carries records of, in the order the manifest's
        ``webhooks.records`` name them. An entry whose path the body lacks is skipped if
        another entry finds records (a vendor pushing leads and deals in bodies of their own);
        a body where none does is unreadable."""
        assert isinstance(config, GenericRestConfig)
        webhooks = config.manifest.webhooks
        if webhooks is None:
            raise WebhookUnreadable("the link's manifest declares no webhooks")
        document = _webhook_document(body)
        found: dict[Stream, list[Any]] = {}
        for entry in webhooks.records:
            items = _webhook_records(document, entry)
            if items is not None:
                found.setdefault(entry.stream, []).extend(items)
        if not found:
            looked = " or ".join(repr(entry.path) for entry in webhooks.records)
            raise WebhookUnreadable(
                f"the body has nothing at {looked}, where the manifest's webhooks.records "
                "look for records"
            )
        pages = []
        for stream, items in found.items():
            mapped = Mapper(stream, config.manifest.streams[stream]).map_page(items)
            if mapped.records or mapped.failures:
                pages.append(Page(stream=stream, records=mapped.records, failures=mapped.failures))
        return pages

    @property
    def declared_streams(self) -> list[Stream]:
        """The streams this link's manifest reads, the link check's first."""
        return list(self.config.manifest.streams)

    def _first_request(
        self, spec: StreamSpec, page_size: int, since: datetime | None
    ) -> PageRequest:
        params: dict[str, Any] = dict(spec.params)
        if spec.page_size_param:
            params[spec.page_size_param] = page_size
        if since is not None and spec.incremental is not None:
            params[spec.incremental.param] = format_datetime(since, spec.incremental.format)
        return PageRequest(url=_absolute(self.config.root, spec.path), params=params)

    async def _send(self, request: PageRequest) -> httpx.Response:
        headers = {"Accept": "application/json", **self.config.manifest.headers}
        return await self.client.get(request.url, params=request.params or None, headers=headers)

    async def check(self) -> None:
        self._refuse_missing(self.config, self.credentials)
        stream, spec = next(iter(self.config.manifest.streams.items()))
        request = paginator_for(spec.pagination, page_size=spec.page_size).first(
            self._first_request(spec, min(spec.page_size, CHECK_PAGE_SIZE), None)
        )
        try:
            _records(_body(await self._fetch(request)), spec, strict=True)
        except CredentialsRejected:
            raise
        except ConnectorError as exc:
            raise CheckFailed(f"{stream.value}: {exc}") from exc

    async def _fetch(self, request: PageRequest) -> httpx.Response:
        try:
            response = await self._send(request)
        except httpx.HTTPError as exc:
            raise ConnectorError(f"could not reach {_where(request.url)}: {exc}") from exc
        _refuse_credentials(response)
        if response.status_code >= 400:
            raise ConnectorError(
                f"{_where(request.url)} answered {_status(response)}: {_vendor_message(response)}"
            )
        return response

    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        spec = self.config.manifest.streams.get(stream)
        if spec is None:
            return
        mapper = Mapper(stream, spec)
        incremental = spec.incremental
        since = (cursor_time(cursor) or incremental.start) if incremental else None
        high = since
        given = cursor if incremental else None
        paginator = paginator_for(spec.pagination, page_size=spec.page_size)
        request: PageRequest | None = paginator.first(
            self._first_request(spec, spec.page_size, since)
        )
        while request is not None:
            response = await self._fetch(request)
            # Decoding and mapping a page is the read's CPU work: in a worker thread, the event
            # loop meanwhile hands the previous page to the database and reads its answers.
            body, items, mapped = await asyncio.to_thread(_read_page, response, spec, mapper)
            records, failures = mapped.records, mapped.failures
            if mapped.newest is not None and (high is None or mapped.newest > high):
                high = mapped.newest
            request = paginator.next(request, response, body, items)
            del body, items, mapped  # one page in memory at a time
            page_cursor = given
            # Unordered vendors: only a complete pass may move the cursor on.
            if incremental and high and (incremental.ordered or request is None):
                page_cursor = cursor_text(high)
            if records or failures or page_cursor != given:
                yield Page(stream=stream, records=records, failures=failures, cursor=page_cursor)
                given = page_cursor


def _refuse_credentials(response: httpx.Response) -> None:
    if response.status_code in (401, 403):
        raise CredentialsRejected(
            f"the vendor refused the credentials ({_status(response)}: {_vendor_message(response)})"
        )


def _read_page(
    response: httpx.Response, spec: StreamSpec, mapper: Mapper
) -> tuple[Any, list[Any], MappedBatch]:
    body = _body(response)
    items = _records(body, spec)
    return body, items, mapper.map_page(items)


def _body(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        kind = response.headers.get("content-type", "no content type")
        raise ConnectorError(
            f"{_where(str(response.request.url))} answered {kind}, not JSON: "
            f"{' '.join(response.text.split())[:80]!r}"
        ) from exc


def _records(body: Any, spec: StreamSpec, *, strict: bool = False) -> list[Any]:
    """The page's records. Some vendors leave an empty list out of the answer: a read takes
    that as no records, the link check (``strict``) as a records_path that may be wrong."""
    found = get_path(body, compile_path(spec.records_path)) if spec.records_path else body
    if found is None and spec.records_path and isinstance(body, dict) and not strict:
        return []
    if not isinstance(found, list):
        where = f"at {spec.records_path!r}" if spec.records_path else "as the body"
        what = "nothing" if found is None else f"a {type(found).__name__}"
        raise ConnectorError(f"the answer has no list of records {where} (found {what})")
    return found


def _webhook_document(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise WebhookUnreadable(
                f"the body is not UTF-8 text (at byte offset {bad.start})"
            ) from None
        raise WebhookUnreadable(
            f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "a string" if isinstance(value, str) else f"a {type(value).__name__}"


def _webhook_records(document: Any, entry: WebhookRecords) -> list[Any] | None:
    """The records ``entry`` points at (an object is one record), None if the body has
    nothing there."""
    found = get_path(document, compile_path(entry.path)) if entry.path else document
    if isinstance(found, list):
        return found
    if isinstance(found, dict):
        return [found]
    if found is None and entry.path:
        return None
    where = f"at {entry.path!r}" if entry.path else "as a whole"
    raise WebhookUnreadable(
        f"the body {where} is {_json_type(found)}, not a {entry.stream.value} record (a JSON "
        "object) or a list of them"
    )


def _absolute(root: str, path: str) -> str:
    if "://" in path:
        return path
    return f"{root}/{path.lstrip('/')}"


def _where(url: str) -> str:
    """A URL fit for a message: no query, which may hold a key."""
    parsed = httpx.URL(url)
    return f"GET {parsed.copy_with(query=None)}"
