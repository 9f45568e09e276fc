"""Login throttling per account and per client address, held in Redis so it holds across
API replicas (the ``limits`` library's sliding-window counter)."""

from __future__ import annotations

import hashlib
import math
import time

from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from pane.connectors.http.ratelimit import close_storage, limits_uri
from pane.errors import RateLimited, Unavailable


class LoginLimiter:
    def __init__(self, redis_url: str, per_account: str, per_ip: str) -> None:
        self._storage = RedisStorage(
            limits_uri(redis_url),
            implementation="redispy",
            key_prefix="pane:login",
            wrap_exceptions=True,
        )
        self._limiter = SlidingWindowCounterRateLimiter(self._storage)
        self._per_account = parse(per_account)
        self._per_ip = parse(per_ip)

    async def aclose(self) -> None:
        await close_storage(self._storage)

    async def check(self, *, email: str, ip: str) -> None:
        """Count one login attempt; refuse with 429 when either budget is spent.

        Fails closed: if Redis cannot be reached, logins are refused rather than unthrottled.
        """
        account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
        checks = ((self._per_account, "account", account), (self._per_ip, "ip", ip))
        try:
            for item, kind, identity in checks:
                if not await self._limiter.hit(item, kind, identity):
                    stats = await self._limiter.get_window_stats(item, kind, identity)
                    retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                    raise RateLimited(
                        f"too many login attempts for this {kind}; try again in {retry_after}s",
                        retry_after=retry_after,
                    )
        except RateLimited:
            raise
        except Exception as exc:
            raise Unavailable(
                "login is temporarily unavailable: the rate limiter cannot reach Redis",
                retry_after=5,
            ) from exc
