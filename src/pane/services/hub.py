"""Live change streams: one wake-up per process, fanned out to every connected client.

After a commit, the process that committed publishes ``{workspace}:{seq}`` on one Redis
channel (``publish``). Each API process holds one subscription to it. For every workspace (and,
for vendor keys, every vendor in it) that has live clients, one channel reads the new events
once, under that audience's own row-level security, and hands them to all of its clients: no
client polls the database. A channel also looks once every few seconds on its own, so a lost
wake-up (Redis away, a process killed between its commit and its publish) only delays events.

A client that falls too far behind is dropped; it reconnects with ``Last-Event-ID`` and catches
up through the feed like any reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pane.db.database import Database, Scope, vendor_scope, workspace_scope
from pane.principal import Principal, VendorPrincipal
from pane.services import changes
from pane.services.changes import Change

log = structlog.get_logger("pane.hub")

CHANNEL = "pane:changes"
CATCH_UP_SECONDS = 5.0
READ_BATCH = 500
CLIENT_BUFFER = 5_000

T = TypeVar("T")


async def publish(redis: Redis, committed: dict[uuid.UUID, int]) -> None:
    """Wake the live streams of these workspaces (after the commit)."""
    async with redis.pipeline(transaction=False) as pipe:
        for workspace_id, seq in committed.items():
            pipe.publish(CHANNEL, f"{workspace_id}:{seq}")
        await pipe.execute()


class StreamClosed(Exception):
    """The stream must end: the server is stopping, or the client fell too far behind."""


@dataclass(eq=False)
class Delivery:
    """Events read once for every client of a channel. What a client's stream makes of them
    (their wire form) is the same for all: the first to ask makes it, the others reuse it."""

    items: list[Change]
    _made: dict[str, Any] = field(default_factory=dict)

    def once(self, name: str, make: Callable[[list[Change]], T]) -> T:
        if name not in self._made:
            self._made[name] = make(self.items)
        made: T = self._made[name]
        return made


@dataclass(eq=False)
class Subscriber:
    principal: Principal
    queue: asyncio.Queue[Delivery | None] = field(
        default_factory=lambda: asyncio.Queue(maxsize=CLIENT_BUFFER // READ_BATCH)
    )
    closed: bool = False

    def offer(self, delivery: Delivery) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(delivery)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass(eq=False)
class _Channel:
    """The live clients of one audience (a workspace, or one vendor in it) and the position
    of the last event handed to them."""

    workspace_id: uuid.UUID
    vendor_id: uuid.UUID | None
    position: int
    subscribers: set[Subscriber] = field(default_factory=set)
    wanted: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def scope(self) -> Scope:
        return _scope(self.workspace_id, self.vendor_id)


class Hub:
    def __init__(self, database: Database, redis_url: str) -> None:
        self._database = database
        self._redis_url = redis_url
        self._channels: dict[tuple[uuid.UUID, uuid.UUID | None], _Channel] = {}
        self._listener: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        # Set by the SSE responses when the server begins to stop (sse-starlette's own
        # detection); the hub then ends every stream so each closes cleanly, at once.
        self.shutdown_signal = anyio.Event()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen())
        self._watcher = asyncio.create_task(self._stop_when_signalled())

    async def _stop_when_signalled(self) -> None:
        await self.shutdown_signal.wait()
        self._end_streams()

    def _end_streams(self) -> None:
        self._stopping = True
        for channel in list(self._channels.values()):
            for subscriber in list(channel.subscribers):
                subscriber.close()
            if channel.task is not None:
                channel.task.cancel()

    async def stop(self) -> None:
        """End every stream (the server is stopping) and the subscription."""
        self._end_streams()
        for task in (self._listener, self._watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    @property
    def clients(self) -> int:
        return sum(len(channel.subscribers) for channel in self._channels.values())

    @asynccontextmanager
    async def subscribe(
        self, principal: Principal, workspace_id: uuid.UUID
    ) -> AsyncIterator[tuple[Subscriber, int]]:
        """Join the workspace's live channel: the subscriber receives every event after the
        position given with it (catch up to that position through the feed first)."""
        if self._stopping:
            raise StreamClosed("the server is stopping")
        vendor_id = principal.vendor_id if isinstance(principal, VendorPrincipal) else None
        key = (workspace_id, vendor_id)
        channel = self._channels.get(key)
        if channel is None:
            async with self._database.transaction(_scope(workspace_id, vendor_id)) as tx:
                position = await changes.latest(tx, workspace_id=workspace_id)
            channel = self._channels.get(key)
            if channel is None:
                channel = _Channel(workspace_id, vendor_id, position)
                self._channels[key] = channel
                channel.task = asyncio.create_task(self._run(channel))
        subscriber = Subscriber(principal)
        channel.subscribers.add(subscriber)
        if self._stopping:  # the server began to stop while this stream was being set up
            subscriber.close()
        try:
            yield subscriber, channel.position
        finally:
            subscriber.close()
            channel.subscribers.discard(subscriber)
            if not channel.subscribers and self._channels.get(key) is channel:
                del self._channels[key]
                if channel.task is not None:
                    channel.task.cancel()

    async def _listen(self) -> None:
        """The process's one subscription; reconnects after Redis comes back."""
        while not self._stopping:
            client = Redis.from_url(self._redis_url, socket_connect_timeout=5)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    async for message in pubsub.listen():
                        self._woken(message.get("data"))
            except (OSError, RedisError) as exc:
                log.warning(
                    "change wake-ups unavailable; streams catch up on their own", error=str(exc)
                )
                await asyncio.sleep(CATCH_UP_SECONDS)
            finally:
                await client.aclose()

    def _woken(self, data: Any) -> None:
        text = data.decode() if isinstance(data, bytes) else str(data)
        workspace, _, seq = text.partition(":")
        try:
            workspace_id, newest = uuid.UUID(workspace), int(seq)
        except ValueError:
            return
        for (channel_workspace, _), channel in list(self._channels.items()):
            if channel_workspace == workspace_id and newest > channel.position:
                channel.wanted.set()

    async def _run(self, channel: _Channel) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(channel.wanted.wait(), timeout=CATCH_UP_SECONDS)
            channel.wanted.clear()
            try:
                await self._read(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: try again at the next tick
                log.warning("live changes could not be read", exc_info=True)

    async def _read(self, channel: _Channel) -> None:
        while channel.subscribers:
            async with self._database.transaction(channel.scope) as tx:
                page = await changes.read(
                    tx,
                    workspace_id=channel.workspace_id,
                    after=channel.position,
                    limit=READ_BATCH,
                    for_vendor=channel.vendor_id is not None,
                )
            if page.items:
                delivery = Delivery(page.items)
                for subscriber in list(channel.subscribers):
                    subscriber.offer(delivery)
            channel.position = page.next_after
            if not page.has_more:
                return


def _scope(workspace_id: uuid.UUID, vendor_id: uuid.UUID | None) -> Scope:
    return vendor_scope(vendor_id) if vendor_id is not None else workspace_scope(workspace_id)
