"""Instants taken from outside (query filters, bodies, cursors) are aware and representable in
UTC. PostgreSQL and asyncpg carry ``timestamptz`` in UTC, so ``9999-12-31T23:59:59-14:00``, a
valid ISO 8601 string, would overflow into the year 10000 on its way to the database."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_NUMBER = re.compile(r"\s*[-+]?[0-9]*\.?[0-9]+\s*")


def not_a_number(value: object) -> object:
    """Refuse what pydantic would read as Unix time: the document says ``format: date-time``."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("must be a date-time such as 2027-01-01T00:00:00Z, not a number")
    return value


def utc_instant(value: datetime) -> datetime:
    """``value`` in UTC, or ValueError saying why it cannot be one."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("needs a timezone offset, e.g. 2027-01-01T00:00:00Z")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("falls outside the years 1 to 9999 once converted to UTC") from exc


Instant = Annotated[datetime, BeforeValidator(not_a_number), AfterValidator(utc_instant)]
