"""The one way a connector is made ready to talk to its vendor: its config and credentials
validated by its own models, and the HTTP client built with its auth flow. The engine adds the
operator's policy and the link's rate limit (``pane.sync.connect``); the contract test
(``pane.connectors.testing``) its own transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

from pane.connectors.base import AuthContext, Connector
from pane.connectors.http import build_client
from pane.connectors.http.ratelimit import LinkRateLimit


@asynccontextmanager
async def open_connector(
    connector_class: type[Connector],
    *,
    config: Mapping[str, Any],
    credentials: Mapping[str, Any],
    context: AuthContext,
    allow_private: bool,
    attempts: int = 5,
    initial_wait: float = 0.5,
    rate_limit: LinkRateLimit | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[Connector]:
    """The connector with its client, closed after. Raises pydantic's ValidationError when
    the config or credentials do not fit the connector."""
    config_model = connector_class.config_model.model_validate(config)
    credentials_model = connector_class.credentials_model.model_validate(credentials)
    client = build_client(
        auth=connector_class.authenticate(config_model, credentials_model, context),
        allow_private=allow_private,
        attempts=attempts,
        initial_wait=initial_wait,
        rate_limit=rate_limit,
        transport=transport,
    )
    async with client:
        yield connector_class(config=config_model, credentials=credentials_model, client=client)
