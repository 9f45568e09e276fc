"""Signing in to a Salesforce org: the client credentials flow, or the JWT bearer flow
(RFC 7523) with a certificate uploaded to the connected app. Both post to the org's own
token endpoint; pane's OAuth2 token lifecycle (Redis cache, one fetch at a time, one
re-fetch on a 401 such as INVALID_SESSION_ID) does the rest."""

from __future__ import annotations

import time

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey
from redis.asyncio import Redis

from pane.connectors.http.auth import ClientCredentialsAuth, OAuth2TokenAuth
from pane.connectors.salesforce.config import (
    ClientCredentialsGrant,
    JwtBearerGrant,
    SalesforceConfig,
)

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce accepts an assertion for at most three minutes after it was signed.
ASSERTION_LIFETIME_SECONDS = 180


def token_url(config: SalesforceConfig) -> str:
    return f"{config.base_url}/services/oauth2/token"


class JwtBearerAuth(OAuth2TokenAuth):
    """A fresh signed assertion for each token request: iss is the connected app's consumer
    key, sub the user pane acts as, aud the login server (login or test.salesforce.com)."""

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        username: str,
        private_key: str,
        audience: str,
        redis: Redis,
        leeway_seconds: int = 60,
    ) -> None:
        super().__init__(
            token_url=token_url,
            identity=f"jwt-bearer\n{client_id}\n{username}",
            redis=redis,
            leeway_seconds=leeway_seconds,
        )
        self.client_id = client_id
        self.username = username
        self.audience = audience
        self.key = RSAKey.import_key(private_key)

    def assertion(self) -> str:
        claims = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.audience,
            "exp": int(time.time()) + ASSERTION_LIFETIME_SECONDS,
        }
        return jwt.encode({"alg": "RS256"}, claims, self.key)

    def token_form(self) -> dict[str, str]:
        return {"grant_type": JWT_BEARER_GRANT, "assertion": self.assertion()}


def build_auth(
    config: SalesforceConfig, grant: ClientCredentialsGrant | JwtBearerGrant, redis: Redis
) -> httpx.Auth:
    if isinstance(grant, JwtBearerGrant):
        return JwtBearerAuth(
            token_url=token_url(config),
            client_id=grant.client_id,
            username=grant.username,
            private_key=grant.private_key.get_secret_value(),
            audience=config.jwt_audience,
            redis=redis,
        )
    return ClientCredentialsAuth(
        token_url=token_url(config),
        client_id=grant.client_id,
        client_secret=grant.client_secret.get_secret_value(),
        redis=redis,
    )
