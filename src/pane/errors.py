"""The refusals pane's services raise. They say what went wrong in the domain's words and know
nothing of HTTP: the API maps each kind to a status and a problem type in one place
(``pane.api.problems``), operator commands print their ``detail`` in one line."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.exceptions
import sqlalchemy.exc


class DomainError(Exception):
    """A refusal a caller can act on. ``detail`` says what and why, for a person; ``extra``
    carries fields a program can use (``errors``: the fields at fault, ``current_version``)."""

    def __init__(self, detail: str, *, keep_changes: bool = False, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        # Some refusals must still commit what the request did (revoking a token family when
        # a spent refresh token is replayed).
        self.keep_changes = keep_changes


class Malformed(DomainError):
    """The request is not in a form pane understands (a header, a body)."""


class BadCursor(Malformed):
    """A list cursor that this list did not hand out, or no longer can resume."""


class Invalid(DomainError):
    """Well-formed input that breaks a rule; ``errors`` names the fields
    (``[{"field": "body.owner_id", "message": "..."}]``)."""


class Unauthenticated(DomainError):
    """No credentials, or ones that are not (or no longer) valid."""


class Forbidden(DomainError):
    """Known credentials that may not do this."""


class NotFound(DomainError):
    """Nothing of that id is visible to the caller (another tenant's ids included)."""


class Conflict(DomainError):
    """The request clashes with the current state (a duplicate, a transition not allowed)."""


class Gone(DomainError):
    """What the request points at existed but has been dropped for good (an expired feed
    position)."""


class Stale(DomainError):
    """The caller's copy is older than the current version (``If-Match``)."""


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` seconds until the next one may pass."""

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """A backing service (database, Redis, a vendor) cannot be reached right now."""

    def __init__(self, detail: str, *, retry_after: int = 5, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


# What a backing service that cannot be reached raises: an API request answers 503 with
# Retry-After, a background job is run again later.
OUTAGES: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)
