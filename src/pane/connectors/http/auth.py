"""Authentication for vendor requests, as httpx auth flows.

OAuth2: pane owns the token lifecycle rather than relying on authlib's automatic refresh (its
issues #650, #531, #783). A token is shared by every worker through Redis and refreshed
``leeway`` seconds before it expires, one fetch at a time per credential (a Redis lock); a 401
on a token pane thought valid gets exactly one re-fetch. Grants differ only in the form they
post: client credentials, a refresh token (rotated ones are handed to ``save_refresh_token``
while the lock is held, so two workers never spend the same refresh token), or a signed JWT
assertion (RFC 7523, see the salesforce connector).
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from pane.connectors.base import CheckFailed, CredentialsRejected

DEFAULT_TOKEN_LIFETIME_SECONDS = 3600


class HeaderKeyAuth(httpx.Auth):
    def __init__(self, header: str, key: str, prefix: str = "") -> None:
        self.header = header
        self.value = f"{prefix}{key}"

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers[self.header] = self.value
        yield request


class QueryKeyAuth(httpx.Auth):
    def __init__(self, parameter: str, key: str) -> None:
        self.parameter = parameter
        self.key = key

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.url = request.url.copy_merge_params({self.parameter: self.key})
        yield request


class OAuth2TokenAuth(httpx.Auth, ABC):
    """A bearer token from a token endpoint, cached in Redis under ``identity``."""

    def __init__(
        self, *, token_url: str, identity: str, redis: Redis, leeway_seconds: int = 60
    ) -> None:
        self.token_url = token_url
        self.redis = redis
        self.leeway_seconds = leeway_seconds
        digest = hashlib.sha256(f"{token_url}\n{identity}".encode()).hexdigest()
        self.cache_key = f"pane:oauth:token:{digest}"
        self.lock_key = f"pane:oauth:lock:{digest}"

    @abstractmethod
    def token_form(self) -> dict[str, str]:
        """The form posted to the token endpoint."""

    async def before_fetch(self) -> None:
        """Called while the lock is held, just before the token request is built."""

    async def kept(self, body: dict[str, Any]) -> None:
        """Called with the token endpoint's answer while the lock is held (rotation)."""

    async def _cached(self) -> str | None:
        stored = await self.redis.get(self.cache_key)
        if not stored:
            return None
        token = orjson.loads(stored)
        if token["expires_at"] - self.leeway_seconds <= time.time():
            return None
        return str(token["access_token"])

    async def _token_request(self) -> httpx.Request:
        await self.before_fetch()
        return httpx.Request(
            "POST", self.token_url, data=self.token_form(), headers={"Accept": "application/json"}
        )

    async def _keep(self, response: httpx.Response) -> str:
        if response.status_code in (400, 401, 403):
            error = _oauth_error(response)
            raise CredentialsRejected(f"the vendor's token endpoint refused pane ({error})")
        if response.status_code >= 300:
            raise CheckFailed(f"the token endpoint answered {response.status_code}")
        try:
            body = response.json()
            access_token = str(body["access_token"])
            lifetime = int(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME_SECONDS)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckFailed("the token endpoint's answer has no access_token") from exc
        await self.kept(body)
        await self.redis.set(
            self.cache_key,
            orjson.dumps({"access_token": access_token, "expires_at": time.time() + lifetime}),
            ex=max(lifetime, 1),
        )
        return access_token

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self._cached()
        if token is None:
            async with self.redis.lock(self.lock_key, timeout=30, blocking_timeout=30):
                token = await self._cached()  # another worker may have fetched it meanwhile
                if token is None:
                    reply = yield await self._token_request()
                    await reply.aread()
                    token = await self._keep(reply)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        async with self.redis.lock(self.lock_key, timeout=30, blocking_timeout=30):
            fresh = await self._cached()
            if fresh is None or fresh == token:
                await self.redis.delete(self.cache_key)
                reply = yield await self._token_request()
                await reply.aread()
                fresh = await self._keep(reply)
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request


class ClientCredentialsAuth(OAuth2TokenAuth):
    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        redis: Redis,
        scope: str | None = None,
        leeway_seconds: int = 60,
    ) -> None:
        super().__init__(
            token_url=token_url,
            identity=f"{client_id}\n{client_secret}",
            redis=redis,
            leeway_seconds=leeway_seconds,
        )
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope

    def token_form(self) -> dict[str, str]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.scope:
            form["scope"] = self.scope
        return form


SaveRefreshToken = Callable[[str], Awaitable[None]]


class RefreshTokenAuth(OAuth2TokenAuth):
    """The refresh-token grant. A vendor that rotates refresh tokens answers with a new one and
    forgets the old: it is stored (``save_refresh_token``) before the lock is released, and the
    newest one is kept in Redis for the other workers, so none of them spends a dead token.
    ``holder`` names whose refresh token it is (the link), so every worker shares one lock."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str | None,
        refresh_token: str,
        redis: Redis,
        save_refresh_token: SaveRefreshToken,
        holder: str,
        leeway_seconds: int = 60,
    ) -> None:
        super().__init__(
            token_url=token_url,
            identity=f"refresh\n{client_id}\n{holder}",
            redis=redis,
            leeway_seconds=leeway_seconds,
        )
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.save_refresh_token = save_refresh_token
        self.latest_key = f"{self.cache_key}:refresh"

    def token_form(self) -> dict[str, str]:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self.refresh_token,
            "client_id": self.client_id,
        }
        if self.client_secret:
            form["client_secret"] = self.client_secret
        return form

    async def before_fetch(self) -> None:
        latest = await self.redis.get(self.latest_key)
        if latest:
            self.refresh_token = latest.decode()

    async def kept(self, body: dict[str, Any]) -> None:
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self.refresh_token:
            await self.save_refresh_token(rotated)
            await self.redis.set(self.latest_key, rotated, ex=30 * 24 * 3600)
            self.refresh_token = rotated


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}"
    if isinstance(body, dict) and body.get("error"):
        description = body.get("error_description")
        return f"{body['error']}: {description}" if description else str(body["error"])
    return f"{response.status_code}"
