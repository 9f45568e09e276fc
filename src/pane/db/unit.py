"""The request's (or job's) one transaction.

A Core connection with its transaction begun carries the tenant settings; the ORM session is
made over that same connection only when something asks for it, so read paths that go
straight from SQL to JSON never pay for a session.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from pane.errors import ProblemError


class Transaction:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            # Joined to the connection's transaction: the session flushes into it and never
            # commits or rolls it back itself ("conservative_savepoint", SQLAlchemy's default).
            self._session = AsyncSession(
                bind=self.connection, expire_on_commit=False, autoflush=False
            )
        return self._session

    async def commit(self) -> None:
        if self._session is not None:
            await self._session.flush()
            await self._session.close()
        await self.connection.commit()

    async def rollback(self) -> None:
        if self._session is not None:
            await self._session.close()
        await self.connection.rollback()


@asynccontextmanager
async def transaction(engine: AsyncEngine) -> AsyncIterator[Transaction]:
    """Commit when the block ends normally, roll back when it raises, except for refusals
    that must keep what they did (``ProblemError.keep_changes``)."""
    async with engine.connect() as connection:
        await connection.begin()
        unit = Transaction(connection)
        try:
            yield unit
        except ProblemError as exc:
            if exc.keep_changes:
                await unit.commit()
            else:
                await unit.rollback()
            raise
        except BaseException:
            await unit.rollback()
            raise
        else:
            await unit.commit()
