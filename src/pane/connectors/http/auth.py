"""Authentication for vendor requests, as httpx auth flows.

OAuth2 client credentials: pane owns the token lifecycle rather than relying on authlib's
automatic refresh (its issues #650, #531, #783). A token is shared by every worker through
Redis and refreshed ``leeway`` seconds before it expires, one fetch at a time per credential
(a Redis lock); a 401 on a token pane thought valid gets exactly one re-fetch.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncGenerator

import httpx
import orjson
from redis.asyncio import Redis

from pane.connectors.base import CheckFailed, CredentialsRejected


class HeaderKeyAuth(httpx.Auth):
    def __init__(self, header: str, key: str) -> None:
        self.header = header
        self.key = key

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers[self.header] = self.key
        yield request


class QueryKeyAuth(httpx.Auth):
    def __init__(self, parameter: str, key: str) -> None:
        self.parameter = parameter
        self.key = key

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.url = request.url.copy_merge_params({self.parameter: self.key})
        yield request


class ClientCredentialsAuth(httpx.Auth):
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
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.scope = scope
        self.redis = redis
        self.leeway_seconds = leeway_seconds
        identity = hashlib.sha256(f"{token_url}\n{client_id}\n{client_secret}".encode()).hexdigest()
        self.cache_key = f"pane:oauth:token:{identity}"
        self.lock_key = f"pane:oauth:lock:{identity}"

    async def _cached(self) -> str | None:
        stored = await self.redis.get(self.cache_key)
        if not stored:
            return None
        token = orjson.loads(stored)
        if token["expires_at"] - self.leeway_seconds <= time.time():
            return None
        return str(token["access_token"])

    def _token_request(self) -> httpx.Request:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        if self.scope:
            form["scope"] = self.scope
        return httpx.Request(
            "POST", self.token_url, data=form, headers={"Accept": "application/json"}
        )

    async def _keep(self, response: httpx.Response) -> str:
        if response.status_code in (400, 401, 403):
            error = _oauth_error(response)
            raise CredentialsRejected(f"the vendor refused the client credentials ({error})")
        if response.status_code >= 300:
            raise CheckFailed(f"the token endpoint answered {response.status_code}")
        try:
            body = response.json()
            access_token = str(body["access_token"])
            lifetime = int(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckFailed("the token endpoint's answer has no access_token") from exc
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
                    reply = yield self._token_request()
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
                reply = yield self._token_request()
                await reply.aread()
                fresh = await self._keep(reply)
        request.headers["Authorization"] = f"Bearer {fresh}"
        yield request


def _oauth_error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code}"
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return f"{response.status_code}"
