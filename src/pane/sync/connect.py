"""A link's connector, ready to talk to its vendor as the engine runs it: the operator's
private-target policy, retries and the link's rate limit on top of the connector's own client
(``pane.connectors.opening``). Used by the sync engine, and by link creation through the check
the application wires into ``pane.services.links``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
from pydantic import ValidationError
from redis.asyncio import Redis

from pane.config import Settings
from pane.connectors.base import AuthContext, CheckFailed, Connector, ConnectorError
from pane.connectors.http.ratelimit import LinkRateLimit
from pane.connectors.opening import open_connector
from pane.connectors.registry import connectors
from pane.errors import Invalid
from pane.secrets import KeyRing

SaveCredentials = Callable[[dict[str, Any]], Awaitable[None]]


class ConnectorMissing(Exception):
    """The link names a connector that is not installed (any more)."""


def open_credentials(keyring: KeyRing, sealed: str | None) -> dict[str, Any]:
    if sealed is None:
        return {}
    opened = orjson.loads(keyring.decrypt(sealed))
    assert isinstance(opened, dict)
    return opened


@asynccontextmanager
async def connector_for(
    *,
    connector: str,
    config: dict[str, Any],
    credentials: dict[str, Any],
    holder: uuid.UUID | str,
    settings: Settings,
    redis: Redis,
    save_credentials: SaveCredentials,
    attempts: int | None = None,
) -> AsyncIterator[Connector]:
    """The connector for a link (or a link about to be made), with its client; closed after."""
    connector_class = connectors().get(connector)
    if connector_class is None:
        raise ConnectorMissing(f"the connector {connector!r} is not installed")
    assert settings.redis_url
    rate_limit = LinkRateLimit.on(settings.redis_url, f"link:{holder}", settings.vendor_rate_limit)
    try:
        async with open_connector(
            connector_class,
            config=config,
            credentials=credentials,
            context=AuthContext(redis=redis, holder=str(holder), save_credentials=save_credentials),
            allow_private=settings.allow_private_vendor_urls,
            attempts=attempts or settings.sync_http_attempts,
            initial_wait=settings.sync_retry_initial_wait,
            rate_limit=rate_limit,
        ) as instance:
            yield instance
    finally:
        await rate_limit.aclose()


CHECK_ATTEMPTS = 2  # someone is waiting at the link form: fail fast rather than back off


async def check_link(
    *,
    connector: str,
    config: dict[str, Any],
    credentials: dict[str, Any],
    holder: uuid.UUID,
    settings: Settings,
    redis: Redis,
) -> dict[str, Any]:
    """Prove the link works before it is saved: a 422 carrying the vendor's reason if not.
    Returns the credentials to store: the vendor may have rotated a refresh token meanwhile,
    and the one sent is then already spent."""
    kept = dict(credentials)

    async def keep(rotated: dict[str, Any]) -> None:
        kept.clear()
        kept.update(rotated)

    try:
        async with connector_for(
            connector=connector,
            config=config,
            credentials=credentials,
            holder=holder,
            settings=settings,
            redis=redis,
            save_credentials=keep,
            attempts=CHECK_ATTEMPTS,
        ) as instance:
            await instance.check()
    except CheckFailed as exc:
        raise Invalid(f"the vendor refused the link: {exc.reason}") from exc
    except httpx.HTTPError as exc:
        reason = str(exc) or type(exc).__name__
        raise Invalid(f"could not reach the vendor: {reason}") from exc
    except (ConnectorError, ValidationError) as exc:
        raise Invalid(f"the link does not work: {exc}") from exc
    return kept
