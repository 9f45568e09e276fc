"""Opaque keyset cursors: base64url of the list's name and the sort key of the last row seen."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import orjson
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from pane.errors import BadCursor
from pane.instants import utc_instant

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def to_json(self) -> bytes:
        # asyncpg hands back its own UUID type, which orjson renders through str().
        return orjson.dumps({"items": self.items, "next_cursor": self.next_cursor}, default=str)


class HasId(Protocol):
    id: uuid.UUID


Row = TypeVar("Row", bound=HasId)


async def page_by_id(
    session: AsyncSession,
    query: Select[Row],
    id_column: InstrumentedAttribute[uuid.UUID],
    *,
    kind: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[Row], str | None]:
    """One page of ORM rows in id order (UUIDv7: creation order), and the cursor after it."""
    query = query.order_by(id_column).limit(limit + 1)
    if cursor:
        (after,) = decode_cursor(kind, cursor, (uuid.UUID,))
        query = query.where(id_column > after)
    rows = list(await session.scalars(query))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, encode_cursor(kind, [rows[-1].id])
    return rows, None


def encode_cursor(kind: str, key: list[Any]) -> str:
    raw = orjson.dumps({"k": kind, "v": key}, default=str)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(kind: str, cursor: str, shape: tuple[type, ...]) -> list[Any]:
    """Return the key values, converted to ``shape``'s types, or refuse with a 400."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.get("k") != kind:
            raise ValueError("cursor belongs to another list")
        values = data["v"]
        if not isinstance(values, list) or len(values) != len(shape):
            raise ValueError("cursor has the wrong shape")
        return [_convert(kind_type, value) for kind_type, value in zip(shape, values, strict=True)]
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise BadCursor(
            "cursor is not valid for this list; pass back next_cursor exactly as received"
        ) from exc


def _convert(kind_type: type, value: Any) -> Any:
    if kind_type is uuid.UUID:
        return uuid.UUID(str(value))
    if kind_type is datetime and isinstance(value, str):
        return utc_instant(datetime.fromisoformat(value))
    if kind_type is str and isinstance(value, str) and "\x00" not in value:
        return value
    raise ValueError("unexpected cursor value")
