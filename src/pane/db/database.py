"""The process's one connection pool, and the one way to open a transaction.

One SQLAlchemy engine holds the pool. It is set to AUTOCOMMIT so that SQLAlchemy itself never
sends BEGIN, COMMIT or ROLLBACK: pane does, on the driver (asyncpg) connection, so that a
transaction starts and learns its principal in one round trip (``BEGIN; SELECT set_config(...)``
as one simple-protocol message). The ORM session, where a transaction asks for one, runs its
statements on that same connection, inside that same transaction.

Settings are transaction-local (``set_config(..., true)``): when the transaction ends, by
commit, rollback or a broken connection, the pooled connection carries no tenant into the next
one, and nothing else is ever set on a session, so connections are returned as they are (and a
pooler in transaction mode, such as pgbouncer, may hand them to anyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import asyncpg
import orjson
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from pane.errors import DomainError

log = structlog.get_logger("pane.db")

FOLLOW_UP_WAIT_SECONDS = 1.0


def asyncpg_url(url: str) -> str:
    """Accept ``postgresql://`` / ``postgres://`` URLs and point them at the asyncpg driver."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def migration_engine(url: str) -> AsyncEngine:
    """The schema owner's engine for alembic, which runs its own transactions (so it is not
    the runtime pool's AUTOCOMMIT)."""
    return _create_async_engine(asyncpg_url(url), pool_size=1, max_overflow=0)


# --- scopes: whose rows a transaction sees ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """What a transaction runs right after BEGIN, in the same round trip. Built only from
    UUIDs and role names (rendered canonically): a simple-protocol message takes no
    parameters."""

    sql: str


def _uuid(value: uuid.UUID) -> str:
    if not isinstance(value, uuid.UUID):
        raise TypeError(f"a scope takes UUIDs, not {type(value).__name__}")
    return f"'{value}'"


def workspace_scope(workspace_id: uuid.UUID) -> Scope:
    """A non-user principal acting in a workspace (an API key, a worker job)."""
    return Scope(f"SELECT set_config('pane.workspace_id', {_uuid(workspace_id)}, true)")


def member_scope(workspace_id: uuid.UUID, user_id: uuid.UUID, roles: Sequence[str]) -> Scope:
    """A member of a workspace whose current role is one of ``roles``: the database checks
    both and refuses with ``NotAMember`` / ``RoleNotAllowed`` otherwise."""
    allowed = "{" + ",".join(str(role) for role in roles) + "}"
    if not all(str(role).isidentifier() for role in roles):
        raise ValueError("role names are identifiers")
    return Scope(f"SELECT pane_begin_reading({_uuid(workspace_id)}, {_uuid(user_id)}, '{allowed}')")


def user_scope(user_id: uuid.UUID) -> Scope:
    """A signed-in user with no workspace: their own memberships and nothing else."""
    return Scope(f"SELECT set_config('pane.user_id', {_uuid(user_id)}, true)")


def pushed_to_scope(link_id: uuid.UUID) -> Scope:
    """A webhook pushed to a link, before its signature is checked: the workspace of the link
    (none, if there is no such link), found by ``pane_webhook_workspace``."""
    return Scope(
        "SELECT set_config('pane.workspace_id',"
        f" coalesce(pane_webhook_workspace({_uuid(link_id)})::text, ''), true)"
    )


def vendor_scope(vendor_id: uuid.UUID) -> Scope:
    """A vendor's key: its own rows in the workspaces that actively link it, as the role
    ``pane_vendor``, which reads leads only through ``vendor_leads`` (the fields each link
    discloses) and may not read deals at all."""
    return Scope(
        f"SELECT set_config('pane.vendor_id', {_uuid(vendor_id)}, true); SET LOCAL ROLE pane_vendor"
    )


class NotAMember(Exception):
    """The user is not (or no longer) a member of the workspace in their token."""


class RoleNotAllowed(Exception):
    """The member's current role does not grant what the request needs."""


# --- the transaction --------------------------------------------------------------------------


@dataclass
class Committed:
    """What a committed transaction leaves for the process to follow up (after the commit,
    never inside it): the newest event sequence per workspace (live streams wake up) and the
    outbox rows written (relayed to the job queue)."""

    events: dict[uuid.UUID, int] = field(default_factory=dict)
    outbox: list[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.outbox)


AfterCommit = Callable[[Committed], Awaitable[None]]


class Transaction:
    """One transaction on one pooled connection: ``connection`` for SQL straight to asyncpg,
    ``session`` for the ORM (on the same connection and transaction, when opened with
    ``orm=True``)."""

    def __init__(
        self, connection: asyncpg.Connection, bind: AsyncConnection | None, *, kept_plans: bool
    ) -> None:
        self.connection = connection
        self._bind = bind
        self._session: AsyncSession | None = None
        self._kept_plans = kept_plans
        self.committed = Committed()

    @property
    def session(self) -> AsyncSession:
        if self._bind is None:
            raise RuntimeError("this transaction was opened without the ORM (orm=True)")
        if self._session is None:
            self._session = AsyncSession(bind=self._bind, expire_on_commit=False, autoflush=False)
        return self._session

    async def enter(self, scope: Scope) -> None:
        """Change whose rows the rest of the transaction sees (signing up, logging in)."""
        await self.connection.execute(scope.sql)

    async def plan_for_values(self) -> None:
        """From here on, let PostgreSQL choose again, as configured, whether to plan each
        statement for the values it is given, in a transaction opened with ``kept_plans``: for
        a statement whose best plan depends on them (a text search, a date or a status that
        few rows have)."""
        if self._kept_plans:
            await self.connection.execute("SET LOCAL plan_cache_mode TO DEFAULT")
            self._kept_plans = False

    async def flush(self) -> None:
        """Send the ORM's pending writes, so that SQL sent straight to the driver sees them."""
        if self._session is not None:
            await self._session.flush()

    def noted_events(self, workspace_id: uuid.UUID, last_seq: int) -> None:
        self.committed.events[workspace_id] = max(
            last_seq, self.committed.events.get(workspace_id, 0)
        )

    def noted_outbox(self, workspace_id: uuid.UUID, outbox_id: uuid.UUID) -> None:
        self.committed.outbox.append((workspace_id, outbox_id))

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()


class Database:
    """The pool and the one way to open a transaction on it.

    A connection is taken with ``engine.raw_connection()`` when the transaction needs no ORM
    (list reads, the sync engine: measured at a third of the Python cost of an
    ``AsyncConnection``), and with ``engine.connect()`` when it does; both come from the same
    pool."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int,
        pool_timeout: float = 30,
        transaction_pooler: bool = False,
        application_name: str = "pane",
    ) -> None:
        connect_args: dict[str, Any] = {"server_settings": {"application_name": application_name}}
        self._transaction_pooler = transaction_pooler
        if transaction_pooler:
            # Behind pgbouncer in transaction mode a server connection serves another client
            # after every transaction, so no named prepared statement may outlive one: asyncpg
            # keeps none, and SQLAlchemy's statements go unnamed (parsed with each use).
            connect_args["statement_cache_size"] = 0
            connect_args["prepared_statement_name_func"] = _unnamed_statement
        self.engine: AsyncEngine = _create_async_engine(
            asyncpg_url(url),
            # A fixed pool: overflow connections would be opened and closed on every burst.
            pool_size=pool_size,
            max_overflow=0,
            pool_timeout=pool_timeout,
            pool_pre_ping=False,
            pool_reset_on_return=None,
            isolation_level="AUTOCOMMIT",
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
            connect_args=connect_args,
        )
        self.after_commit: AfterCommit | None = None
        self._followups: set[asyncio.Task[None]] = set()

    async def dispose(self) -> None:
        if self._followups:
            await asyncio.wait(self._followups, timeout=5)
        await self.engine.dispose()

    def transaction(
        self, scope: Scope | None = None, *, orm: bool = False, kept_plans: bool = False
    ) -> _Opened:
        """A transaction on a pooled connection, scoped to ``scope``, for ``async with``.

        With ``kept_plans`` its statements run on the plan PostgreSQL keeps for each (set in
        the BEGIN's own round trip), for reads whose plan is the same whatever the values:
        left to choose, PostgreSQL planned the first page of leads anew at every request (the
        kept plan's estimate was a hair dearer, 1706 against 1691 on the bench's 1M leads, for
        the same plan), and planning under row-level security cost more than running it:
        0.3 to 0.4 ms of PostgreSQL's CPU of ~1 ms per request; bench.api's req/s rose 9 to 14%.
        ``Transaction.plan_for_values`` gives a statement that needs it its own plan.

        It commits when the block ends normally and rolls back when it raises, except for
        refusals that must keep what they did (``DomainError.keep_changes``); after a commit,
        the process's ``after_commit`` follows it up. (A class rather than a generator-based
        context manager: every request pays for this, and the generator machinery cost more
        than the rest of it.)"""
        # Behind a transaction pooler no statement is kept: a plan is made at each use anyway,
        # and forcing it generic would only leave the values out of it.
        return _Opened(self, scope, orm, kept_plans and not self._transaction_pooler)

    async def _follow_up(self, committed: Committed) -> None:
        assert self.after_commit is not None
        try:
            await self.after_commit(committed)
        except Exception:  # a follow-up is a wake-up call; the outbox relay retries the work
            log.warning("after-commit follow-up failed", exc_info=True)

    async def _followed_up(self, committed: Committed) -> None:
        # Awaited, so a caller sees its job enqueued when the request returns, but only for a
        # moment: a Redis that hangs must not hold the response.
        task = asyncio.create_task(self._follow_up(committed))
        self._followups.add(task)
        task.add_done_callback(self._followups.discard)
        await asyncio.wait({task}, timeout=FOLLOW_UP_WAIT_SECONDS)


_BEGIN_KEEPING_PLANS = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan"


class _Opened:
    """One use of ``Database.transaction``."""

    __slots__ = ("_database", "_kept_plans", "_orm", "_pooled", "_scope", "_session_bind", "_tx")

    def __init__(
        self, database: Database, scope: Scope | None, orm: bool, kept_plans: bool
    ) -> None:
        self._database = database
        self._scope = scope
        self._orm = orm
        self._kept_plans = kept_plans
        self._pooled: Any = None
        self._session_bind: AsyncConnection | None = None
        self._tx: Transaction | None = None

    async def __aenter__(self) -> Transaction:
        engine = self._database.engine
        if self._orm:
            self._session_bind = await engine.connect()
            try:
                driver = (await self._session_bind.get_raw_connection()).driver_connection
            except BaseException:
                await self._session_bind.close()
                raise
        else:
            self._pooled = await engine.raw_connection()
            driver = self._pooled.driver_connection
        assert isinstance(driver, asyncpg.Connection)
        begin = _BEGIN_KEEPING_PLANS if self._kept_plans else "BEGIN"
        if self._scope is not None:
            begin = f"{begin}; {self._scope.sql}"
        try:
            await driver.execute(begin)
        except asyncpg.InsufficientPrivilegeError as exc:
            await self._release(driver)
            hint = getattr(exc, "hint", None)
            if hint == "pane:not-member":
                raise NotAMember from exc
            if hint == "pane:role":
                raise RoleNotAllowed from exc
            raise
        except BaseException:
            await self._release(driver)
            raise
        self._tx = Transaction(driver, self._session_bind, kept_plans=self._kept_plans)
        return self._tx

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        tx = self._tx
        assert tx is not None
        commit = exc is None or (isinstance(exc, DomainError) and exc.keep_changes)
        committed = False
        try:
            if commit:
                await tx.flush()
                await tx._close_session()
                await tx.connection.execute("COMMIT")
                committed = True
        finally:
            if not committed:
                with contextlib.suppress(Exception):  # never hide the error that got here
                    await tx._close_session()
            await self._release(tx.connection)  # rolls back what did not commit
        database = self._database
        if commit and tx.committed and database.after_commit is not None:
            await database._followed_up(tx.committed)

    async def _release(self, driver: asyncpg.Connection) -> None:
        """Back to the pool, rolling back whatever transaction is still open on it; a
        connection that cannot end it (closed, or stuck in a cancelled query) is discarded
        instead."""
        if not driver.is_closed() and driver.is_in_transaction():
            with contextlib.suppress(Exception):  # never hide the error that got here
                await driver.execute("ROLLBACK")
        broken = driver.is_closed() or driver.is_in_transaction()
        if self._session_bind is not None:
            if broken:
                await self._session_bind.invalidate()
            await self._session_bind.close()
        else:
            if broken:
                self._pooled.invalidate()
            self._pooled.close()


def _unnamed_statement() -> str:
    return ""
