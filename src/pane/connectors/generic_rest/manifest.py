"""The manifest: one vendor's REST API described as data (YAML or JSON), so it needs no code.

    base_url: https://partners.example.com/api
    auth: {type: api_key, location: header, name: X-Api-Key}
    streams:
      leads:
        path: v1/leads
        page_size: 200
        page_size_param: per_page
        pagination: {type: page_number, param: page, total_pages_path: meta.pages}
        records_path: data
        incremental: {param: modified_after, format: "%d/%m/%Y %H:%M", cursor_field: modified}
        deleted_field: archived
        fields:
          external_id: id
          first_name: contact.name.given
          vendor_status: {type: map, path: status, values: {A: accepted}, default: other}
          updated_at: {type: datetime, path: modified, format: "%d/%m/%Y %H:%M"}
    webhooks:
      signature: {type: hmac_sha256, header: X-Signature, prefix: "sha256="}
      records:
        - {stream: leads, path: payload.lead}

Every model refuses unknown keys, so a typo is an error naming the key, not a silent no-op.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    JsonValue,
    StringConstraints,
    model_validator,
)

from pane.connectors.records import RECORD_TYPES, Stream
from pane.connectors.webhooks import DEFAULT_TOLERANCE_SECONDS

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DottedPath = Annotated[
    str,
    StringConstraints(max_length=500, pattern=r"^[^.\s]+(\.[^.\s]+)*$"),
    Field(
        description="Where a value sits in the vendor's JSON: keys joined by dots "
        "(`contact.name.given`); a number picks a list item, `*` every item.",
        examples=["contact.name.given", "products.*.sku"],
    ),
]
RecordsPath = Annotated[str, StringConstraints(max_length=500, pattern=r"^([^.\s]+(\.[^.\s]+)*)?$")]
# An HTTP header name (RFC 9110's token).
HeaderName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"),
]
SPECIAL_DATE_FORMATS = ("iso8601", "epoch", "epoch_ms")


def _date_format(value: str) -> str:
    if value in SPECIAL_DATE_FORMATS or "%" in value:
        return value
    raise ValueError(
        "a date format is iso8601, epoch, epoch_ms or a strftime pattern like %d/%m/%Y %H:%M"
    )


DateFormat = Annotated[
    str,
    StringConstraints(min_length=2, max_length=60),
    AfterValidator(_date_format),
    Field(
        description="`iso8601`, `epoch` (seconds), `epoch_ms`, or a strftime pattern. "
        "Times without a zone are taken as UTC.",
        examples=["iso8601", "epoch", "%d/%m/%Y %H:%M"],
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- auth ------------------------------------------------------------------------------------


class NoAuth(_Model):
    """The API needs no credentials."""

    type: Literal["none"] = "none"


class ApiKeyAuth(_Model):
    """A key sent in a header (with an optional prefix such as `Bearer `) or a query parameter."""

    type: Literal["api_key"] = "api_key"
    location: Literal["header", "query"] = "header"
    name: Name = Field(default="X-Api-Key", description="The header or query parameter.")
    prefix: Annotated[str, StringConstraints(max_length=50)] = Field(
        default="", description="Put before the key, e.g. `Bearer ` or `Token `."
    )
    credential: Literal["api_key", "token"] = Field(
        default="api_key", description="Which of the link's credentials holds the key."
    )


class BasicAuth(_Model):
    """HTTP basic auth with the link's `username` and `password`."""

    type: Literal["basic"] = "basic"


class ClientCredentialsAuth(_Model):
    """OAuth2 client credentials with the link's `client_id` and `client_secret`."""

    type: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: Name = Field(description="Absolute, or relative to the base URL.")
    scope: Name | None = None


class RefreshTokenAuth(_Model):
    """OAuth2 refresh-token grant with the link's `client_id`, optional `client_secret` and
    `refresh_token`; a rotated refresh token is saved in the link."""

    type: Literal["oauth2_refresh_token"] = "oauth2_refresh_token"
    token_url: Name = Field(description="Absolute, or relative to the base URL.")


Auth = Annotated[
    NoAuth | ApiKeyAuth | BasicAuth | ClientCredentialsAuth | RefreshTokenAuth,
    Field(discriminator="type"),
]


# --- pagination ------------------------------------------------------------------------------


class NoPagination(_Model):
    """Everything comes in one answer."""

    type: Literal["none"] = "none"


class CursorTokenPagination(_Model):
    """The answer carries a token for the next page, sent back as a query parameter; no
    token (missing, null or empty) means the last page."""

    type: Literal["cursor_token"] = "cursor_token"
    token_path: DottedPath
    param: Name


class PageNumberPagination(_Model):
    """Numbered pages; stops at the total number of pages if the answer says it, else at the
    first empty page."""

    type: Literal["page_number"] = "page_number"
    param: Name = "page"
    start: Annotated[int, Field(ge=0)] = 1
    total_pages_path: DottedPath | None = None
    stop_on_short_page: bool = Field(
        default=False, description="Also stop at a page with fewer records than page_size."
    )


class OffsetPagination(_Model):
    """An offset parameter moved on by the records received; stops at an empty page or, unless
    told not to, at a page shorter than page_size (the vendor must honour page_size then)."""

    type: Literal["offset"] = "offset"
    param: Name = "offset"
    start: Annotated[int, Field(ge=0)] = 0
    total_path: DottedPath | None = Field(default=None, description="The total record count.")
    stop_on_short_page: bool = True


class LinkHeaderPagination(_Model):
    """The next page's URL in a `Link` header (RFC 8288)."""

    type: Literal["link_header"] = "link_header"
    rel: Name = "next"


class NextUrlPagination(_Model):
    """The next page's URL (absolute or relative) in the answer's body."""

    type: Literal["next_url"] = "next_url"
    url_path: DottedPath


Pagination = Annotated[
    NoPagination
    | CursorTokenPagination
    | PageNumberPagination
    | OffsetPagination
    | LinkHeaderPagination
    | NextUrlPagination,
    Field(discriminator="type"),
]


# --- field mapping ---------------------------------------------------------------------------


class PathField(_Model):
    """The value at ``path`` as it is (rename, nested path); ``default`` when it is absent."""

    type: Literal["path"] = "path"
    path: DottedPath
    default: JsonValue = None


class ConstField(_Model):
    """The same value for every record."""

    type: Literal["const"] = "const"
    value: JsonValue


class MapField(_Model):
    """The vendor's word translated through ``values`` (keys compared as text; booleans as
    `true`/`false`). A value not in the map becomes ``default``, stays as it is (`keep`) or
    fails the record (`fail`)."""

    type: Literal["map"] = "map"
    path: DottedPath
    values: dict[str, JsonValue] = Field(min_length=1)
    default: JsonValue = None
    unmapped: Literal["default", "keep", "fail"] = "default"


class DateTimeField(_Model):
    """A point in time, parsed by ``format``; without a zone it is taken as UTC."""

    type: Literal["datetime"] = "datetime"
    path: DottedPath
    format: DateFormat = "iso8601"


class DateField(_Model):
    """A calendar day, parsed by ``format`` (a timestamp keeps the day as written)."""

    type: Literal["date"] = "date"
    path: DottedPath
    format: DateFormat = "iso8601"


class MoneyField(_Model):
    """An amount, kept exact: numbers or text like `1.234,56 €` (decimal comma, thousands
    separators, a currency sign or code around it)."""

    type: Literal["money"] = "money"
    path: DottedPath
    decimal_separator: Literal[".", ","] = "."
    thousands_separator: Literal["", ",", ".", " ", "'"] = ""


FieldSpec = Annotated[
    PathField | ConstField | MapField | DateTimeField | DateField | MoneyField,
    Field(discriminator="type"),
]
FieldMapping = DottedPath | FieldSpec


# --- streams ---------------------------------------------------------------------------------


class Incremental(_Model):
    """Ask only for what changed since the last sync. The cursor is the highest
    ``cursor_field`` seen; it goes back in ``param`` and the vendor is expected to answer
    changes at or after it (a small overlap that the engine's upsert absorbs)."""

    param: Name
    format: DateFormat = "iso8601"
    cursor_field: DottedPath
    cursor_format: DateFormat | None = Field(
        default=None, description="How cursor_field is written, if not like `format`."
    )
    start: AwareDatetime | None = Field(
        default=None, description="Where the first sync starts (default: everything)."
    )
    ordered: bool = Field(
        default=True,
        description="The vendor returns the oldest change first, so the cursor can move on "
        "after each page; if not, it moves only after the last page.",
    )


def _targets(stream: Stream) -> list[str]:
    return [name for name in RECORD_TYPES[stream].model_fields if name not in ("raw", "deleted")]


def _relative(path: str) -> str:
    if "://" in path or path.startswith("//"):
        raise ValueError("a stream path is relative to the base URL, not a URL of its own")
    return path


class StreamSpec(_Model):
    """How to read one stream."""

    path: Annotated[
        str, StringConstraints(min_length=1, max_length=2000), AfterValidator(_relative)
    ] = Field(description="Appended to the base URL.", examples=["api/v2/leads"])
    params: dict[Name, str | int | float | bool] = Field(
        default_factory=dict, description="Query parameters sent with every request."
    )
    page_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    page_size_param: Name | None = Field(default=None, description="e.g. `limit`, `per_page`.")
    pagination: Pagination = Field(default_factory=NoPagination)
    records_path: RecordsPath = Field(
        default="", description="Where the records sit; empty: the body is the list."
    )
    incremental: Incremental | None = None
    deleted_field: DottedPath | None = Field(
        default=None, description="A record whose value here is true is a deletion."
    )
    deleted_values: list[JsonValue] | None = Field(
        default=None, description="Instead of true: the values that mean deleted."
    )
    fields: dict[Name, FieldMapping] = Field(
        description="Normalized field → where it comes from: a dotted path, or a transform. "
        + "; ".join(f"{stream.value}: {', '.join(_targets(stream))}" for stream in RECORD_TYPES),
    )


# --- webhooks --------------------------------------------------------------------------------


class StandardWebhooksSignature(_Model):
    """Standard Webhooks v1 (standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
    `webhook-signature` headers, an HMAC-SHA256 of id, timestamp and body keyed with the link's
    `whsec_` secret. Deliveries older or newer than `tolerance_seconds` are refused."""

    type: Literal["standard_webhooks"] = "standard_webhooks"
    tolerance_seconds: Annotated[int, Field(ge=30, le=3600)] = Field(
        default=DEFAULT_TOLERANCE_SECONDS,
        description="How far the webhook-timestamp may be from pane's clock, in seconds.",
    )


class HmacSha256Signature(_Model):
    """An HMAC-SHA256 of the raw body, keyed with the link's secret exactly as pasted into the
    vendor's portal, sent in one header (GitHub's `X-Hub-Signature-256: sha256=<hex>`). With
    no timestamp there is no replay window; deliveries are told apart by `id_header`, or
    without one by the body itself (an identical body is a duplicate)."""

    type: Literal["hmac_sha256"] = "hmac_sha256"
    header: HeaderName = Field(
        description="The header holding the signature.", examples=["X-Hub-Signature-256"]
    )
    prefix: Annotated[str, StringConstraints(max_length=50)] = Field(
        default="", description="Before the signature in the header, e.g. `sha256=`."
    )
    encoding: Literal["hex", "base64"] = Field(
        default="hex", description="How the signature is written."
    )
    id_header: HeaderName | None = Field(
        default=None,
        description="The header with the vendor's id for the delivery (what a redelivery "
        "repeats), if it sends one.",
        examples=["X-GitHub-Delivery"],
    )


Signature = Annotated[StandardWebhooksSignature | HmacSha256Signature, Field(discriminator="type")]


class WebhookRecords(_Model):
    """Where a webhook's body carries records of one stream. They are mapped with that
    stream's `fields` (and `deleted_field`), like the records a sync reads."""

    stream: Stream = Field(description="One of the manifest's `streams`.")
    path: RecordsPath = Field(
        default="",
        description="Where the records sit in the body: keys joined by dots, leading to one "
        "record object or a list of them; empty: the body itself.",
        examples=["data", "payload.leads"],
    )


class Webhooks(_Model):
    """The vendor also pushes records, in webhooks to the link's `POST /v1/hooks/{link_id}`,
    signed with the link's webhook secret."""

    signature: Signature = Field(
        default_factory=StandardWebhooksSignature,
        description="How the vendor signs each delivery; Standard Webhooks if not said.",
    )
    records: list[WebhookRecords] = Field(
        min_length=1,
        description="Where each stream's records sit in a body. A body needs to carry at "
        "least one of them; entries of the same stream are read as one page.",
    )


def _parsed(value: Any) -> Any:
    """A manifest may come as YAML or JSON text (pasted into a form) as well as an object."""
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ValueError(f"the manifest is not valid YAML or JSON: {exc}") from exc
    return value


class Manifest(_Model):
    """One vendor API: where it is, how to authenticate, how to read each stream, and the
    webhooks it pushes, if any."""

    version: Literal[1] = 1
    title: Name | None = None
    base_url: HttpUrl
    headers: dict[Name, Annotated[str, StringConstraints(max_length=2000)]] = Field(
        default_factory=dict, description="Sent with every request (not for secrets)."
    )
    auth: Auth = Field(default_factory=NoAuth)
    streams: dict[Stream, StreamSpec] = Field(
        min_length=1, description="The first one is read by the link check."
    )
    webhooks: Webhooks | None = Field(
        default=None, description="If the vendor pushes records too: how it signs, and where."
    )

    @model_validator(mode="after")
    def _fields_fit_the_records(self) -> Manifest:
        problems = []
        for stream, spec in self.streams.items():
            record = RECORD_TYPES[stream]
            known = _targets(stream)
            unknown = sorted(set(spec.fields) - set(known))
            if unknown:
                problems.append(
                    f"streams.{stream.value}.fields: {stream.value} records have no "
                    f"{', '.join(unknown)} (they have: {', '.join(known)})"
                )
            required = [name for name in known if record.model_fields[name].is_required()]
            missing = [name for name in required if name not in spec.fields]
            if missing:
                problems.append(
                    f"streams.{stream.value}.fields: {', '.join(missing)} must be mapped"
                )
        if self.webhooks is not None:
            problems.extend(self._undeclared_webhook_streams(self.webhooks))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _undeclared_webhook_streams(self, webhooks: Webhooks) -> list[str]:
        declared = ", ".join(stream.value for stream in self.streams)
        return [
            f"webhooks.records.{index}.stream: the manifest has no {entry.stream.value} "
            f"stream, whose fields would map these records (it has: {declared})"
            for index, entry in enumerate(webhooks.records)
            if entry.stream not in self.streams
        ]


class GenericRestConfig(_Model):
    """A link's configuration: the vendor's manifest, and where to reach it if not at the
    manifest's own base URL."""

    manifest: Annotated[Manifest, BeforeValidator(_parsed)]
    base_url: HttpUrl | None = Field(
        default=None,
        description="Overrides the manifest's base URL: a sandbox, a regional host, the demo.",
    )

    @property
    def root(self) -> str:
        """The base URL requests are built on, without a trailing slash."""
        return str(self.base_url or self.manifest.base_url).rstrip("/")
