"""A link's connector, ready to talk to its vendor: config and credentials validated, the
client built with the connector's auth, the operator's private-target policy, retries and the
link's rate limit. Used by the sync engine and by link creation (``check()``)."""

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
from pane.connectors.http import build_client
from pane.connectors.http.ratelimit import LinkRateLimit
from pane.connectors.registry import connectors
from pane.errors import Invalid
from pane.secrets import KeyRing

SaveCredentials = Callable[[dict[str, Any]], Awaitable[None]]


class ConnectorMissing(Exception):
    """The link names a connector that is not installed (any more)."""


def link_streams(connector: str, config: dict[str, Any]) -> list[str]:
    """The streams a link reads: none when its connector is gone, all the connector's when the
    config no longer fits it (the sync then fails, saying why)."""
    connector_class = connectors().get(connector)
    if connector_class is None:
        return []
    try:
        parsed = connector_class.config_model.model_validate(config)
    except ValidationError:
        return sorted(stream.value for stream in connector_class.streams)
    return sorted(stream.value for stream in connector_class.streams_for(parsed))


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
    config_model = connector_class.config_model.model_validate(config)
    credentials_model = connector_class.credentials_model.model_validate(credentials)
    auth = connector_class.authenticate(
        config_model,
        credentials_model,
        AuthContext(redis=redis, holder=str(holder), save_credentials=save_credentials),
    )
    assert settings.redis_url
    rate_limit = LinkRateLimit.on(settings.redis_url, f"link:{holder}", settings.vendor_rate_limit)
    client = build_client(
        auth=auth,
        allow_private=settings.allow_private_vendor_urls,
        attempts=attempts or settings.sync_http_attempts,
        initial_wait=settings.sync_retry_initial_wait,
        rate_limit=rate_limit,
    )
    try:
        yield connector_class(config=config_model, credentials=credentials_model, client=client)
    finally:
        await client.aclose()
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
