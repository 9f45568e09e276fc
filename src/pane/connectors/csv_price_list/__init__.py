"""A distributor's price list published as a CSV file at a URL.

Columns are mapped by name; decimals and dates are parsed as the file writes them (decimal
comma, thousands separators, ``01.01.2026``). The file is streamed and parsed line by line,
so memory stays flat however long the list is. The cursor is the file's version (ETag,
Last-Modified or a digest), and an unchanged file is not read again.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal

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

from pane.connectors.base import CheckFailed, Connector, CredentialsRejected
from pane.connectors.records import Page, PriceItemRecord, RecordFailure, Stream
from pane.connectors.timeformat import parse_time

PAGE_SIZE = 1000
Column = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class Columns(BaseModel):
    """Which CSV column holds each field (header names, as written in the file)."""

    model_config = ConfigDict(extra="forbid")

    sku: Column
    name: Column | None = None
    currency: Column | None = None
    list_price: Column | None = None
    partner_cost: Column | None = None
    msrp: Column | None = None
    discount: Column | None = None
    valid_from: Column | None = None
    valid_to: Column | None = None


class CsvPriceListConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl
    columns: Columns
    delimiter: Annotated[str, StringConstraints(min_length=1, max_length=1)] = ","
    decimal_separator: Literal[".", ","] = "."
    thousands_separator: Literal["", ",", ".", " ", "'"] = ""
    date_format: Annotated[str, StringConstraints(min_length=2, max_length=40)] = "%Y-%m-%d"
    encoding: Literal["utf-8", "utf-8-sig", "latin-1", "cp1252"] = "utf-8"
    default_currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    token_query_parameter: Annotated[str, StringConstraints(min_length=1)] | None = Field(
        default=None,
        description="Send the token as this query parameter (else as a Bearer header).",
    )


class CsvPriceListCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = None


class CsvPriceList(Connector):
    name: ClassVar[str] = "csv_price_list"
    title: ClassVar[str] = "CSV price list"
    description: ClassVar[str] = "A distributor's or vendor's price list published as a CSV file."
    config_model = CsvPriceListConfig
    credentials_model = CsvPriceListCredentials
    streams: ClassVar[frozenset[Stream]] = frozenset({Stream.PRICE_LISTS})

    config: CsvPriceListConfig
    credentials: CsvPriceListCredentials

    def _request(self, version: str | None = None) -> httpx.Request:
        params: dict[str, str] = {}
        headers: dict[str, str] = {"Accept": "text/csv, text/plain;q=0.9, */*;q=0.1"}
        token = self.credentials.token.get_secret_value() if self.credentials.token else None
        if token and self.config.token_query_parameter:
            params[self.config.token_query_parameter] = token
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        if version and version.startswith("etag:"):
            headers["If-None-Match"] = version.removeprefix("etag:")
        # merged into the URL's own query: httpx's params= would replace it
        url = httpx.URL(str(self.config.url)).copy_merge_params(params)
        return self.client.build_request("GET", url, headers=headers)

    @staticmethod
    def _refuse(response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            status = f"{response.status_code} {response.reason_phrase}"
            raise CredentialsRejected(f"the server refused the credentials ({status})")
        if response.status_code >= 400:
            raise CheckFailed(
                f"the price list answered {response.status_code} {response.reason_phrase}"
            )

    async def check(self) -> None:
        response = await self.client.send(self._request(), stream=True)
        try:
            self._refuse(response)
            header = await _first_line(response, self.config.encoding)
        finally:
            await response.aclose()
        found = next(csv.reader([header], delimiter=self.config.delimiter), [])
        wanted = {column for column in self.config.columns.model_dump().values() if column}
        missing = sorted(wanted - set(found))
        if missing:
            raise CheckFailed(
                f"the file has no column {', '.join(missing)} (it has: {', '.join(found)})"
            )

    async def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        if stream is not Stream.PRICE_LISTS:
            raise ValueError(f"{self.name} reads only price_lists, not {stream}")
        response = await self.client.send(self._request(cursor), stream=True)
        try:
            if response.status_code == 304:
                return
            self._refuse(response)
            digest = hashlib.sha256()
            page = Page(stream=stream, cursor=cursor)
            async for row, failure in self._rows(response, digest):
                if failure is not None:
                    page.failures.append(failure)
                elif row is not None:
                    page.records.append(row)
                if len(page.records) + len(page.failures) >= PAGE_SIZE:
                    yield page
                    page = Page(stream=stream, cursor=cursor)
            version = _version(response) or f"sha256:{digest.hexdigest()}"
            if version == cursor:
                return
            yield Page(stream=stream, records=page.records, failures=page.failures, cursor=version)
        finally:
            await response.aclose()

    async def _rows(
        self, response: httpx.Response, digest: Any
    ) -> AsyncIterator[tuple[PriceItemRecord | None, RecordFailure | None]]:
        decoder = codecs.getincrementaldecoder(self.config.encoding)(errors="replace")
        header: list[str] | None = None
        pending = ""
        async for chunk in response.aiter_bytes():
            digest.update(chunk)
            pending += decoder.decode(chunk)
            *lines, pending = pending.split("\n")
            # Parsing is CPU work: in a worker thread, so the event loop meanwhile hands the
            # previous page to the database.
            header, parsed = await asyncio.to_thread(self._parse_lines, lines, header)
            for item in parsed:
                yield item
        tail = pending + decoder.decode(b"", final=True)
        if header is not None:
            for item in self._parse_lines([tail], header)[1]:
                yield item

    def _parse_lines(
        self, lines: list[str], header: list[str] | None
    ) -> tuple[list[str] | None, list[tuple[PriceItemRecord | None, RecordFailure | None]]]:
        """The lines' rows parsed, and the header (the first line read, if not yet known)."""
        parsed = []
        for values in csv.reader(_strip(lines), delimiter=self.config.delimiter):
            if header is None:
                header = values
            elif values:
                parsed.append(self._parse(dict(zip(header, values, strict=False))))
        return header, parsed

    def _parse(self, raw: dict[str, str]) -> tuple[PriceItemRecord | None, RecordFailure | None]:
        columns = self.config.columns
        try:
            sku = raw.get(columns.sku, "").strip()
            return (
                PriceItemRecord(
                    external_id=sku,
                    raw=raw,
                    sku=sku,
                    name=self._text(raw, columns.name),
                    currency=(
                        self._text(raw, columns.currency) or self.config.default_currency or ""
                    ),
                    list_price=self._money(raw, columns.list_price),
                    partner_cost=self._money(raw, columns.partner_cost),
                    msrp=self._money(raw, columns.msrp),
                    discount=self._money(raw, columns.discount),
                    valid_from=self._date(raw, columns.valid_from),
                    valid_to=self._date(raw, columns.valid_to),
                ),
                None,
            )
        except (ValidationError, ValueError, InvalidOperation) as exc:
            return None, RecordFailure(raw=raw, reason=_reason(exc))

    @staticmethod
    def _text(raw: dict[str, str], column: str | None) -> str | None:
        value = raw.get(column, "").strip() if column else ""
        return value or None

    def _money(self, raw: dict[str, str], column: str | None) -> Decimal | None:
        value = self._text(raw, column)
        if value is None:
            return None
        if self.config.thousands_separator:
            value = value.replace(self.config.thousands_separator, "")
        elif self.config.decimal_separator == ",":
            value = value.replace(".", "")
        value = value.replace(self.config.decimal_separator, ".")
        try:
            return Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"{column}: {raw.get(column or '')!r} is not an amount") from exc

    def _date(self, raw: dict[str, str], column: str | None) -> date | None:
        value = self._text(raw, column)
        if value is None:
            return None
        try:
            return parse_time(value, self.config.date_format).date()
        except ValueError as exc:
            raise ValueError(
                f"{column}: {value!r} is not a date like {self.config.date_format}"
            ) from exc


def _strip(lines: list[str]) -> Iterator[str]:
    return (line.rstrip("\r") for line in lines if line.strip())


def _version(response: httpx.Response) -> str | None:
    if etag := response.headers.get("etag"):
        return f"etag:{etag}"
    if modified := response.headers.get("last-modified"):
        return f"modified:{modified}"
    return None


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
    return str(exc)


async def _first_line(response: httpx.Response, encoding: str) -> str:
    collected = b""
    async for chunk in response.aiter_bytes():
        collected += chunk
        if b"\n" in collected or len(collected) > 65536:
            break
    return (
        collected.split(b"\n", 1)[0]
        .decode(encoding, errors="replace")
        .lstrip("\ufeff")
        .rstrip("\r")
    )
