"""``sync_link``: read a link's streams page by page and commit each page's rows, its events,
the run's counts and the new cursor in one transaction.

A run survives anything that can happen to the process running it:
- it holds a **lease** on its link (``vendor_links.sync_lease_*``), renewed while it runs and
  checked inside every page's transaction, so a second worker (or a job arq runs again after a
  worker died) never syncs the same link at the same time, and a worker that lost its lease
  cannot commit anything more;
- its **progress** (per stream: the cursor reached, done or not) commits with each page, so a
  run taken over after its worker was killed carries on from the last committed page;
- pages are **idempotent**: the upsert is keyed on (workspace, vendor, external id) and writes
  only rows that differ, so re-reading a page, or an incremental overlap, changes nothing.

Reading and writing overlap: the next pages are fetched while the current one is written, a
bounded number ahead, so memory stays flat however long the stream is. Two pages are written
at once, each on its own connection (PostgreSQL's CPU is the sync's limit, and a connection
uses one core): the next page's rows go in while the page before it appends its events and
commits, and it takes its own turn only once that page has committed. Pages commit in the
order they were read, so the progress committed with a page never passes a page that did not
commit; a page whose predecessor failed rolls back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import orjson
import structlog
from redis.asyncio import Redis

from pane.config import Settings
from pane.connectors.base import Connector, ConnectorError, CredentialsRejected
from pane.connectors.records import RECORD_TYPES, Page, Stream
from pane.db.database import Database, workspace_scope
from pane.secrets import CredentialDecryptError, KeyRing
from pane.sync import runs
from pane.sync.connect import ConnectorMissing, connector_for, open_credentials
from pane.sync.runs import Claim, LeaseLost
from pane.sync.targets import TARGETS
from pane.sync.upsert import Turn, Written, sweep_unseen, write_page

log = structlog.get_logger("pane.sync")

# Pages waiting to be written go in one transaction, up to WRITE_BATCH records: a commit, the
# lease, the counts and the event sequence cost the same for 500 rows as for 2,000 (writing
# four pages of 500 at a time made the write path ~11% faster).
WRITE_BATCH = 2_000
PREFETCH_PAGES = 8
# Two, for the machine's two cores (the same 200,000 leads written two pages at a time:
# 10,500 rows/s against 6,200 one at a time, bench.sync's write path); each is a connection.
PAGES_IN_FLIGHT = 2
MAX_RUNS_PER_JOB = 5


@dataclass(frozen=True)
class SyncDeps:
    database: Database
    redis: Redis
    settings: Settings
    keyring: KeyRing


@dataclass(frozen=True)
class RunResult:
    run_id: uuid.UUID
    status: str  # succeeded, failed, needs_reauth, lease_lost
    error: str | None = None


T = TypeVar("T")


class _EarlierPageFailed(Exception):
    """The page before this one did not commit, so this one must not (its failure is the
    run's)."""


async def _after(earlier: asyncio.Task[None] | None) -> None:
    if earlier is None:
        return
    # Waited for, not awaited: cancelling this page must not cancel the one before it.
    await asyncio.wait({earlier})
    if earlier.cancelled() or earlier.exception() is not None:
        raise _EarlierPageFailed


async def _committed(writing: list[tuple[asyncio.Task[None], Any]]) -> None:
    """Wait for the oldest page in flight to commit (raising its failure) and let it go."""
    await writing[0][0]
    writing.pop(0)


async def write_in_turn(
    pages: AsyncIterator[T],
    write: Callable[[T, Turn], Coroutine[Any, Any, None]],
    *,
    overlap: Callable[[T, T], bool],
    at_once: int = PAGES_IN_FLIGHT,
) -> None:
    """Write ``pages``, up to ``at_once`` at a time, each by ``write(page, turn)`` in a
    transaction of its own. ``write`` awaits ``turn()`` before it takes the locks the page
    before it holds (the event sequence, the run's row) and so commits after it; ``turn()``
    refuses if that page did not commit. A page that ``overlap``s one in flight (would lock
    a row it writes) starts only once those have committed: otherwise it could lock that row
    first and then wait for its turn while the earlier page waits for the row, a wait no one
    ends (PostgreSQL sees no cycle: the later page is idle, not waiting on a lock). The first
    failure is raised once the pages in flight have ended; if reading ``pages`` fails, the
    pages read before it still commit."""
    writing: list[tuple[asyncio.Task[None], T]] = []  # in the order read, the oldest first
    try:
        while True:
            try:
                page = await anext(pages)
            except StopAsyncIteration:
                break
            except Exception:
                while writing:  # what was read before the failure still lands
                    await _committed(writing)
                raise
            if any(overlap(earlier, page) for _, earlier in writing):
                while writing:
                    await _committed(writing)
            after = partial(_after, writing[-1][0] if writing else None)
            writing.append((asyncio.create_task(write(page, after)), page))
            if len(writing) == at_once:
                await _committed(writing)
        while writing:
            await _committed(writing)
    finally:
        for task, _ in writing:
            task.cancel()
        await asyncio.gather(*(task for task, _ in writing), return_exceptions=True)


def pages_overlap(earlier: Page, later: Page) -> bool:
    """Whether writing ``later`` could lock a row ``earlier`` (of the same stream) writes: a
    record of the same id, or (a price list) a price list of the same currency, made by the
    first page that has it."""
    if TARGETS[later.stream].price_list_by_currency:
        return True
    ids = {record.external_id for record in earlier.records}
    return any(record.external_id in ids for record in later.records)


class _ReadFailed(Exception):
    """The connector (not the database) failed while reading; carries its exception."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


_END = object()


async def _prefetched(
    pages: AsyncIterator[Page], depth: int, batch: int
) -> AsyncGenerator[Page, None]:
    """Pages read ``depth`` ahead in a task of their own, so the vendor's next answer is on its
    way while the database writes the current page. Pages already waiting when the writer
    asks are handed over joined, up to ``batch`` records: a fast vendor's pages are written a
    few at a time, a slow vendor's each as it comes."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=depth)

    async def pump() -> None:
        try:
            async for page in pages:
                await queue.put(page)
        except Exception as exc:
            await queue.put(_ReadFailed(exc))
        else:
            await queue.put(_END)

    task = asyncio.create_task(pump())
    try:
        item = await queue.get()
        while True:
            if item is _END:
                return
            if isinstance(item, _ReadFailed):
                raise item
            group = [item]
            count = len(item.records) + len(item.failures)
            item = None
            while count < batch and not queue.empty():
                item = queue.get_nowait()
                if not isinstance(item, Page):
                    break  # the end, or a failure: after the pages read before it
                group.append(item)
                count += len(item.records) + len(item.failures)
                item = None
            yield _joined(group)
            if item is None:
                item = await queue.get()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _joined(pages: list[Page]) -> Page:
    """One page of several read in a row; it resumes where the last of them does."""
    if len(pages) == 1:
        return pages[0]
    cursors = [page.cursor for page in pages if page.cursor is not None]
    return Page(
        stream=pages[0].stream,
        records=[record for page in pages for record in page.records],
        failures=[failure for page in pages for failure in page.failures],
        cursor=cursors[-1] if cursors else None,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectorError) and str(exc):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class LinkSync:
    """One claimed run of one link."""

    def __init__(self, deps: SyncDeps, claim: Claim) -> None:
        self.deps = deps
        self.claim = claim

    async def _save_credentials(self, credentials: dict[str, Any]) -> None:
        sealed = self.deps.keyring.encrypt(orjson.dumps(credentials))
        async with self.deps.database.transaction(workspace_scope(self.claim.workspace_id)) as tx:
            await runs.save_credentials(
                tx,
                workspace_id=self.claim.workspace_id,
                link_id=self.claim.link_id,
                sealed=sealed,
            )

    async def run(self) -> list[str]:
        """Every stream of the run; the errors of streams that failed (the others go on)."""
        claim = self.claim
        errors: list[str] = []
        async with connector_for(
            connector=claim.connector,
            config=claim.config,
            credentials=open_credentials(self.deps.keyring, claim.sealed_credentials),
            holder=claim.link_id,
            settings=self.deps.settings,
            redis=self.deps.redis,
            save_credentials=self._save_credentials,
        ) as connector:
            readable = connector.streams_for(connector.config)
            for stream in claim.streams:
                # a stream this link's config does not read (a manifest without campaigns)
                if stream not in readable or claim.progress.get(stream.value, {}).get("done"):
                    continue
                try:
                    await self._stream(connector, stream)
                except _ReadFailed as failed:
                    if isinstance(failed.cause, CredentialsRejected):
                        raise failed.cause from None
                    errors.append(f"{stream.value}: {_describe(failed.cause)}")
                    log.warning(
                        "stream failed",
                        link_id=str(claim.link_id),
                        stream=stream.value,
                        error=_describe(failed.cause),
                    )
        return errors

    def _start_cursor(self, stream: Stream) -> str | None:
        state = self.claim.progress.get(stream.value, {})
        if "cursor" in state:
            return str(state["cursor"])
        if self.claim.full_resync:
            return None
        return self.claim.cursors.get(stream.value)

    async def _stream(self, connector: Connector, stream: Stream) -> None:
        cursor = self._start_cursor(stream)
        try:
            pages = connector.read(stream, cursor)
        except Exception as exc:
            raise _ReadFailed(exc) from exc
        read_to = cursor

        async def with_cursors() -> AsyncGenerator[tuple[Page, str | None], None]:
            nonlocal read_to
            async with contextlib.aclosing(_prefetched(pages, PREFETCH_PAGES, WRITE_BATCH)) as read:
                async for page in read:
                    read_to = page.cursor if page.cursor is not None else read_to
                    yield page, read_to

        async with contextlib.aclosing(with_cursors()) as read:
            await write_in_turn(
                read,
                lambda item, turn: self._commit(stream, *item, turn=turn),
                overlap=lambda earlier, later: pages_overlap(earlier[0], later[0]),
            )
        await self._complete(stream, read_to)

    async def _commit(
        self,
        stream: Stream,
        page: Page,
        cursor: str | None,
        *,
        turn: Turn,
    ) -> None:
        """One page in one transaction, committed in its turn (``write_in_turn``)."""
        claim = self.claim
        wanted = RECORD_TYPES[stream]
        records = [record for record in page.records if isinstance(record, wanted)]
        failures = [
            {"stream": stream.value, "reason": failure.reason, "raw": failure.raw}
            for failure in page.failures
        ]
        failures += [
            {
                "stream": stream.value,
                "reason": f"the connector produced a {type(record).__name__} in {stream.value}",
                "raw": record.raw,
            }
            for record in page.records
            if not isinstance(record, wanted)
        ]
        async with self.deps.database.transaction(workspace_scope(claim.workspace_id)) as tx:
            written = await write_page(
                tx,
                target=TARGETS[stream],
                records=records,
                workspace_id=claim.workspace_id,
                vendor_id=claim.vendor_id,
                vendor_name=claim.vendor_name,
                link_id=claim.link_id,
                run_id=claim.run_id,
                remember_seen=claim.sweep,
                turn=turn,
            )
            await turn()  # a page with no records has had no turn yet
            # The lease is renewed (and its row locked) only now, in turn: the page before
            # holds that lock until it commits.
            await runs.renew_lease(tx, claim, self.deps.settings.sync_lease_seconds)
            await runs.record_page(
                tx,
                claim,
                stream=stream,
                written=written,
                fetched=len(records) + len(failures),
                failures=failures,
                cursor=cursor,
            )

    async def _complete(self, stream: Stream, cursor: str | None) -> None:
        """The stream was read to its end: after a full read, what the vendor no longer has
        becomes a tombstone (unless the read saw nothing at all: an empty answer is more
        likely a vendor fault than every record withdrawn)."""
        claim = self.claim
        async with self.deps.database.transaction(workspace_scope(claim.workspace_id)) as tx:
            await runs.renew_lease(tx, claim, self.deps.settings.sync_lease_seconds)
            swept = 0
            seen = int(claim.progress.get(stream.value, {}).get("seen", 0))
            if claim.sweep and seen > 0:
                swept = await sweep_unseen(
                    tx,
                    target=TARGETS[stream],
                    workspace_id=claim.workspace_id,
                    vendor_id=claim.vendor_id,
                    link_id=claim.link_id,
                    run_id=claim.run_id,
                )
            await runs.record_page(
                tx,
                claim,
                stream=stream,
                written=Written(deleted=swept),
                fetched=0,
                failures=[],
                cursor=cursor,
                done=True,
            )


async def _keep_lease(deps: SyncDeps, claim: Claim, main: asyncio.Task[Any]) -> None:
    """Renew the lease while the run goes on (a slow vendor page must not lose it); if another
    worker has taken the link, stop the run."""
    interval = deps.settings.sync_lease_seconds / 3
    while True:
        await asyncio.sleep(interval)
        try:
            async with deps.database.transaction(workspace_scope(claim.workspace_id)) as tx:
                await runs.renew_lease(tx, claim, deps.settings.sync_lease_seconds)
        except LeaseLost:
            main.cancel()
            return
        except Exception as exc:
            # Whatever failed (no free connection in the pool, the database restarting), the
            # next renewal may not: a keeper that stopped here would let the lease run out
            # under a run that is still writing.
            log.warning("could not renew a sync lease", link_id=str(claim.link_id), error=repr(exc))


async def _finish(deps: SyncDeps, claim: Claim, error: str | None, reauth: bool = False) -> None:
    async with deps.database.transaction(workspace_scope(claim.workspace_id)) as tx:
        await runs.finish(tx, claim, error=error, reauth=reauth)


async def _release(deps: SyncDeps, claim: Claim) -> None:
    async with deps.database.transaction(workspace_scope(claim.workspace_id)) as tx:
        await runs.release(tx, claim)


async def _run_claimed(deps: SyncDeps, claim: Claim) -> RunResult:
    main = asyncio.current_task()
    assert main is not None
    keeper = asyncio.create_task(_keep_lease(deps, claim, main))
    try:
        errors = await LinkSync(deps, claim).run()
    except CredentialsRejected as exc:
        reason = f"the vendor rejected the credentials: {exc.reason}"
        await _finish(deps, claim, reason, reauth=True)
        return RunResult(claim.run_id, "needs_reauth", reason)
    except (ConnectorMissing, CredentialDecryptError, ValueError) as exc:
        # the link's config or credentials no longer fit its connector, or cannot be opened
        reason = _describe(exc)
        await _finish(deps, claim, reason)
        return RunResult(claim.run_id, "failed", reason)
    except LeaseLost:
        log.warning("sync stopped: link taken over, paused or deleted", link_id=str(claim.link_id))
        return RunResult(claim.run_id, "lease_lost")
    except asyncio.CancelledError:
        if keeper.done() and not keeper.cancelled():  # the keeper found the lease taken
            main.uncancel()
            log.warning(
                "sync stopped: link taken over, paused or deleted", link_id=str(claim.link_id)
            )
            return RunResult(claim.run_id, "lease_lost")
        # stopping: hand the link back now rather than when the lease runs out
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_release(deps, claim), timeout=5)
        raise
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
    error = "; ".join(errors) if errors else None
    await _finish(deps, claim, error)
    return RunResult(claim.run_id, "failed" if error else "succeeded", error)


async def sync_link(
    deps: SyncDeps,
    *,
    workspace_id: uuid.UUID,
    link_id: uuid.UUID,
    streams: list[str] | None = None,
    trigger: str = "schedule",
    run_id: uuid.UUID | None = None,
) -> list[RunResult]:
    """Carry out the link's pending run (or a new one), then any run asked for meanwhile.
    Nothing happens when the link is gone, not active, or being synced by another worker."""
    results: list[RunResult] = []
    for _ in range(MAX_RUNS_PER_JOB):
        async with deps.database.transaction(workspace_scope(workspace_id)) as tx:
            claim = await runs.claim(
                tx,
                workspace_id=workspace_id,
                link_id=link_id,
                run_id=run_id,
                streams=streams,
                trigger=trigger,
                lease_seconds=deps.settings.sync_lease_seconds,
            )
        if claim is None:
            break
        log.info(
            "sync started",
            link_id=str(link_id),
            run_id=str(claim.run_id),
            streams=[stream.value for stream in claim.streams],
            full_resync=claim.full_resync,
        )
        result = await _run_claimed(deps, claim)
        log.info("sync ended", link_id=str(link_id), run_id=str(claim.run_id), status=result.status)
        results.append(result)
        if result.status not in ("succeeded", "failed"):
            break
        async with deps.database.transaction(workspace_scope(workspace_id)) as tx:
            if not await runs.has_pending(tx, workspace_id, link_id):
                break
        run_id, streams = None, None
    return results
