"""Every list pane serves, built one way: keyset pagination over a stable order, opaque cursors,
filters as positional parameters, LIKE patterns escaped. Rows go from SQL straight to
JSON-ready dicts (no ORM objects, no second validation), on the request's own transaction.

A cursor is base64url of the list's name and the sort key of the last row seen; it is valid
only for the list that handed it out (400 otherwise) and is never built from user text.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from pane.db.database import Transaction
from pane.errors import BadCursor
from pane.instants import utc_instant
from pane.principal import Principal, VendorPrincipal

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


def rows_json(data: Any) -> bytes:
    """Rows as JSON, written as pydantic writes a single object's response (UTC as ``Z``, money
    as decimal strings). asyncpg hands back its own UUID type, which orjson renders through
    str()."""
    return orjson.dumps(data, default=str, option=orjson.OPT_UTC_Z)


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None

    def to_json(self) -> bytes:
        return rows_json({"items": self.items, "next_cursor": self.next_cursor})


@dataclass(frozen=True, slots=True)
class Key:
    """One part of a list's sort key: the SQL expression, the name it has in a row, and the
    type a cursor value converts back to."""

    expression: str
    name: str
    kind: type


def escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class ListQuery:
    """One list: what it selects from where, in which order, with which filters.

    ``source`` and ``columns`` are fixed SQL of the service's; every value a caller gives
    travels as a parameter."""

    kind: str
    source: str
    columns: str
    order: Sequence[Key]
    descending: bool = False
    args: list[Any] = field(default_factory=list)
    where: list[str] = field(default_factory=list)
    # Filtered by a caller's value (a status, a date, a text), not only by the principal's
    # scope: its best plan depends on the value (Transaction.plan_for_values).
    filters_by_value: bool = False

    @classmethod
    def scoped(
        cls,
        principal: Principal,
        *,
        kind: str,
        source: str,
        columns: str,
        order: Sequence[Key],
        descending: bool = False,
        alias: str = "",
        live_only: bool = True,
    ) -> ListQuery:
        """A list of a tenant's rows, scoped by the principal's own column so the plan
        starts from an index that leads with it (row-level security checks it again)."""
        query = cls(kind, source, columns, order, descending)
        if isinstance(principal, VendorPrincipal):
            query.within(f"{alias}vendor_id", principal.vendor_id)
        else:
            query.within(f"{alias}workspace_id", principal.workspace_id)
        if live_only:
            query.clause(f"{alias}deleted_at IS NULL")
        return query

    def _param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def clause(self, sql: str) -> ListQuery:
        self.where.append(sql)
        return self

    def within(self, expression: str, value: Any) -> ListQuery:
        """The rows of the principal's own scope (its workspace, its vendor): not a filter of
        the caller's choosing."""
        self.where.append(f"{expression} = {self._param(value)}")
        return self

    def equals(self, expression: str, value: Any) -> ListQuery:
        if value is not None:
            self.where.append(f"{expression} = {self._param(value)}")
            self.filters_by_value = True
        return self

    def at_least(self, expression: str, value: Any) -> ListQuery:
        if value is not None:
            self.where.append(f"{expression} >= {self._param(value)}")
            self.filters_by_value = True
        return self

    def later_than_now(self, expression: str) -> ListQuery:
        self.where.append(f"{expression} > now()")
        return self

    def contains(self, expression: str, text: str | None) -> ListQuery:
        """Rows whose ``expression`` (already lower-cased in SQL) contains ``text``."""
        if text:
            self.where.append(f"{expression} LIKE {self._param(f'%{escape_like(text.lower())}%')}")
            self.filters_by_value = True
        return self

    def sql(self, cursor: str | None, limit: int) -> str:
        where = list(self.where)
        if cursor:
            after = decode_cursor(self.kind, cursor, tuple(key.kind for key in self.order))
            keys = ", ".join(key.expression for key in self.order)
            values = ", ".join(self._param(value) for value in after)
            where.append(f"({keys}) {'<' if self.descending else '>'} ({values})")
        direction = " DESC" if self.descending else ""
        order = ", ".join(f"{key.expression}{direction}" for key in self.order)
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        return (
            f"SELECT {self.columns} FROM {self.source}{condition}"  # noqa: S608 - fixed SQL
            f" ORDER BY {order} LIMIT {row_count(limit + 1)}"
        )

    async def ranked(self, tx: Transaction, *, ranking: str, limit: int) -> list[dict[str, Any]]:
        """The first ``limit`` rows by ``ranking`` (fixed SQL), for short answers that are not
        paged (a price comparison)."""
        condition = f" WHERE {' AND '.join(self.where)}" if self.where else ""
        sql = (
            f"SELECT {self.columns} FROM {self.source}{condition}"  # noqa: S608 - fixed SQL
            f" ORDER BY {ranking} LIMIT {row_count(limit)}"
        )
        if self.filters_by_value:
            await tx.plan_for_values()
        return [dict(row) for row in await tx.connection.fetch(sql, *self.args)]

    async def page(self, tx: Transaction, *, cursor: str | None, limit: int) -> Page:
        sql = self.sql(cursor, limit)
        if self.filters_by_value:
            await tx.plan_for_values()
        rows = await tx.connection.fetch(sql, *self.args)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = encode_cursor(self.kind, [rows[-1][key.name] for key in self.order])
        return Page(items=[dict(row) for row in rows], next_cursor=next_cursor)


def row_count(count: int) -> str:
    """A LIMIT written into the statement rather than passed as a parameter: with the count
    unknown, PostgreSQL costs a prepared statement's generic plan as if it read a share of the
    table, and so plans every execution anew (row-level security makes that planning dear).
    Written in, the plan is made once per statement and reused."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise TypeError("a row count is a non-negative int")
    return str(count)


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


BY_ID = (Key("id", "id", uuid.UUID),)
