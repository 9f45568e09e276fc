"""From a vendor's JSON object to a normalized record, as the manifest's field mapping says.

Each mapping is compiled once per read into small functions, so a record costs a few dict
lookups and one model validation. A record that does not fit becomes a ``RecordFailure``
with every reason at once; it never stops the page.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import ValidationError

from pane.connectors.generic_rest.manifest import (
    ConstField,
    DateField,
    DateTimeField,
    FieldMapping,
    MapField,
    MoneyField,
    PathField,
    StreamSpec,
)
from pane.connectors.records import RECORD_TYPES, MappedBatch, Record, RecordFailure, Stream
from pane.connectors.timeformat import parse_time

Path = tuple[str, ...]
Getter = Callable[[dict[str, Any]], Any]
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "deleted"})
# Around an amount: currency signs, codes and spaces ("EUR 1.234,56", "1 234,56 €").
AMOUNT_WRAPPING = re.compile(r"^[^\d+\-.,]+|[^\d.,]+$")


def compile_path(dotted: str) -> Path:
    return tuple(dotted.split(".")) if dotted else ()


def get_path(value: Any, path: Path) -> Any:
    """The value at ``path`` (None if any step is missing); ``*`` maps over a list."""
    for position, part in enumerate(path):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list):
            if part == "*":
                rest = path[position + 1 :]
                return [get_path(item, rest) for item in value]
            try:
                value = value[int(part)]
            except (ValueError, IndexError):
                return None
        else:
            return None
        if value is None:
            return None
    return value


def getter(path: Path) -> Getter:
    """``get_path`` for one path, with the common one-key case as a plain dict lookup (the
    record itself is always a dict)."""
    if len(path) == 1:
        key = path[0]
        return lambda raw: raw.get(key)
    return lambda raw: get_path(raw, path)


# --- dates and money -------------------------------------------------------------------------


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a timestamp")
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a timestamp") from exc


def parse_datetime(value: Any, fmt: str) -> datetime | None:
    """``value`` as an aware datetime (UTC if it names no zone); None if empty."""
    if value is None or value == "":
        return None
    if fmt in ("epoch", "epoch_ms"):
        seconds = _number(value) / (1000 if fmt == "epoch_ms" else 1)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a timestamp") from exc
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a date and time like {fmt}")
    try:
        return _moment(value, fmt)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date and time like {fmt}") from exc


# A record's change time is read twice (a field and the cursor), and a vendor's times repeat
# (minutes, or created = modified): remembered, a repeat costs a dict lookup.
@lru_cache(maxsize=4096)
def _moment(text: str, fmt: str) -> datetime:
    stripped = text.strip()
    moment = datetime.fromisoformat(stripped) if fmt == "iso8601" else parse_time(stripped, fmt)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def format_datetime(moment: datetime, fmt: str) -> str:
    """``moment`` written as the vendor reads it (in UTC)."""
    moment = moment.astimezone(UTC)
    if fmt == "iso8601":
        return moment.isoformat().replace("+00:00", "Z")
    if fmt == "epoch":
        return str(int(moment.timestamp()))
    if fmt == "epoch_ms":
        return str(int(moment.timestamp() * 1000))
    return moment.strftime(fmt)


def parse_date(value: Any, fmt: str) -> date | None:
    if value is None or value == "":
        return None
    if fmt in ("epoch", "epoch_ms"):
        moment = parse_datetime(value, fmt)
        return moment.date() if moment else None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a date like {fmt}")
    text = value.strip()
    try:
        if fmt != "iso8601":
            return parse_time(text, fmt).date()
        # A timestamp keeps the day as written, not the day in UTC.
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text).date()
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date like {fmt}") from exc


def parse_money(
    value: Any, decimal_separator: str = ".", thousands_separator: str = ""
) -> Decimal | None:
    """An exact Decimal from a number or text; None if empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(
            repr(value)
        )  # the shortest text for the float: 0.1, not 0.1000000000000000055
    text = AMOUNT_WRAPPING.sub("", str(value).strip())
    text = text.replace("\u00a0", "").replace("\u202f", "")
    if thousands_separator:
        text = text.replace(thousands_separator, "")
    elif decimal_separator == ",":
        text = text.replace(".", "")
    text = text.replace(decimal_separator, ".").replace(" ", "")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(f"{value!r} is not an amount") from exc
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not an amount")
    return amount


# --- compiling a mapping ---------------------------------------------------------------------


def _map_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _map(spec: MapField) -> Getter:
    find = getter(compile_path(spec.path))
    values = spec.values

    def get(raw: dict[str, Any]) -> Any:
        found = find(raw)
        if found is None:
            return None
        key = _map_key(found)
        if key in values:
            return values[key]
        if spec.unmapped == "keep":
            return found
        if spec.unmapped == "fail":
            raise ValueError(f"{found!r} is not one of {', '.join(values)}")
        return spec.default

    return get


def compile_field(mapping: FieldMapping) -> Getter:
    """One normalized field's value from a vendor record."""
    if isinstance(mapping, str):
        mapping = PathField(path=mapping)
    if isinstance(mapping, ConstField):
        constant = mapping.value
        return lambda raw: constant
    if isinstance(mapping, MapField):
        return _map(mapping)
    find = getter(compile_path(mapping.path))
    if isinstance(mapping, PathField):
        default = mapping.default
        if default is None:
            return find
        return lambda raw: _or(find(raw), default)
    if isinstance(mapping, DateTimeField):
        dt_format = mapping.format
        return lambda raw: parse_datetime(find(raw), dt_format)
    if isinstance(mapping, DateField):
        day_format = mapping.format
        return lambda raw: parse_date(find(raw), day_format)
    assert isinstance(mapping, MoneyField)
    decimal, thousands = mapping.decimal_separator, mapping.thousands_separator
    return lambda raw: parse_money(find(raw), decimal, thousands)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _kind(annotation: Any) -> str:
    """``text`` for fields that take only text, ``texts`` for lists of it, else ``other``:
    vendors send ids and phone numbers as numbers, pane keeps them as text."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kind(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        kinds = {_kind(arg) for arg in get_args(annotation) if arg is not type(None)}
        return kinds.pop() if len(kinds) == 1 else "other"
    if origin is list:
        return "texts" if _kind(get_args(annotation)[0]) == "text" else "other"
    return "text" if annotation is str else "other"


def _as_text(value: Any) -> Any:
    if type(value) is str:
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    return value


def _reason(exc: Exception, field: str | None = None) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or field}: {error['msg']}"
            for error in exc.errors()
        )
    return f"{field}: {exc}" if field else str(exc)


class Mapper:
    """Maps one stream's vendor records; also reads each record's incremental cursor."""

    def __init__(self, stream: Stream, spec: StreamSpec) -> None:
        self.record_type: type[Record] = RECORD_TYPES[stream]
        annotations = {
            name: info.annotation for name, info in self.record_type.model_fields.items()
        }
        self.fields = [
            (name, compile_field(mapping), _kind(annotations[name]))
            for name, mapping in spec.fields.items()
        ]
        self.deleted = getter(compile_path(spec.deleted_field)) if spec.deleted_field else None
        self.deleted_values = spec.deleted_values
        self.cursor: Getter | None = None
        self.cursor_format = "iso8601"
        self.cursor_field = ""
        if spec.incremental is not None:
            self.cursor = getter(compile_path(spec.incremental.cursor_field))
            self.cursor_format = spec.incremental.cursor_format or spec.incremental.format
            self.cursor_field = spec.incremental.cursor_field

    def _deleted(self, raw: dict[str, Any]) -> bool:
        if self.deleted is None:
            return False
        value = self.deleted(raw)
        if self.deleted_values is not None:
            return value in self.deleted_values
        if isinstance(value, str):
            return value.strip().lower() in TRUE_WORDS
        return value is True or value == 1

    def map(self, raw: Any) -> tuple[Record | RecordFailure, datetime | None]:
        """The record (or why it failed) and its cursor value (None: it has none)."""
        if not isinstance(raw, dict):
            return RecordFailure(raw, f"a record is a JSON object, not {type(raw).__name__}"), None
        values: dict[str, Any] = {}
        reasons: list[str] = []
        for name, get, kind in self.fields:
            try:
                value = get(raw)
            except ValueError as exc:
                reasons.append(_reason(exc, name))
                continue
            if value is None:
                continue
            if kind == "text":
                value = _as_text(value)
            elif kind == "texts" and isinstance(value, list):
                value = [_as_text(item) for item in value]
            values[name] = value
        cursor = None
        if self.cursor is not None:
            try:
                cursor = parse_datetime(self.cursor(raw), self.cursor_format)
            except ValueError as exc:
                reasons.append(_reason(exc, self.cursor_field))
        if reasons:
            return RecordFailure(raw, "; ".join(reasons)), cursor
        try:
            return self.record_type(raw=raw, deleted=self._deleted(raw), **values), cursor
        except ValidationError as exc:
            return RecordFailure(raw, _reason(exc)), cursor

    def map_page(self, items: list[Any]) -> MappedBatch:
        batch = MappedBatch()
        for item in items:
            batch.add(*self.map(item))
        return batch


def cursor_time(cursor: str | None) -> datetime | None:
    """A stored cursor back as a time (None if there is none or it is not one of ours: then
    the stream is read from the start, which the engine's upsert makes safe)."""
    if not cursor:
        return None
    try:
        moment = datetime.fromisoformat(cursor)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def cursor_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()
