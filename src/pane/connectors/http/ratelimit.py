"""A per-link request budget held in Redis, so it holds however many workers sync the link.
Requests wait for room rather than fail: vendors publish limits, pane keeps to them."""

from __future__ import annotations

import asyncio
import time

import httpx
from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter


def limits_uri(redis_url: str) -> str:
    if redis_url.startswith("unix://"):
        return "async+redis+unix://" + redis_url[len("unix://") :]
    return "async+" + redis_url


async def close_storage(storage: RedisStorage) -> None:
    # limits keeps its redis.asyncio client on the storage's bridge and offers no close.
    client = getattr(getattr(storage, "bridge", None), "storage", None)
    if client is not None:
        await client.aclose()


class LinkRateLimit:
    def __init__(self, storage: RedisStorage, link_key: str, rate: str) -> None:
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.item: RateLimitItem = parse(rate)
        self.link_key = link_key

    @classmethod
    def on(cls, redis_url: str, link_key: str, rate: str) -> LinkRateLimit:
        storage = RedisStorage(
            limits_uri(redis_url), implementation="redispy", key_prefix="pane:vendor-rate"
        )
        return cls(storage, link_key, rate)

    async def aclose(self) -> None:
        await close_storage(self.storage)

    async def acquire(self) -> None:
        while not await self.limiter.hit(self.item, self.link_key):
            stats = await self.limiter.get_window_stats(self.item, self.link_key)
            await asyncio.sleep(min(max(stats.reset_time - time.time(), 0.05), 60.0))


class RateLimitedTransport(httpx.AsyncBaseTransport):
    """Innermost, so retries count against the budget like any other request."""

    def __init__(self, inner: httpx.AsyncBaseTransport, limit: LinkRateLimit) -> None:
        self.inner = inner
        self.limit = limit

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.limit.acquire()
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
