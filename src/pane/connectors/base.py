"""The connector contract. A connector declares what it reads and does, reads pages of
normalized records through the HTTP client the engine hands it, and never touches the
database. Third parties ship connectors in their own packages under the entry-point group
``pane.connectors``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from pane.connectors.records import Action, Page, Stream
from pane.connectors.webhooks import WebhookScheme, WebhookUnreadable


class ConnectorError(Exception):
    """Something went wrong talking to the vendor."""


class CheckFailed(ConnectorError):
    """The vendor refused the link's configuration or credentials; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CredentialsRejected(CheckFailed):
    """The vendor rejects the credentials: the link needs new ones, retrying will not help."""


class ActionNotSupported(ConnectorError):
    pass


class NoCredentials(BaseModel):
    """For vendors whose data needs no secret."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class AuthContext:
    """What a connector's auth flow may use besides its own config and credentials.

    ``redis`` holds tokens shared by every worker; ``holder`` names the link whose credentials
    these are (a stable key for token caches and locks); ``save_credentials`` stores changed
    credentials (a rotated refresh token) encrypted in the link, in a transaction of its own.
    """

    redis: Redis
    holder: str
    save_credentials: Callable[[dict[str, Any]], Awaitable[None]]


class Connector(ABC):
    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    config_model: ClassVar[type[BaseModel]]
    credentials_model: ClassVar[type[BaseModel]] = NoCredentials
    streams: ClassVar[frozenset[Stream]]
    actions: ClassVar[frozenset[Action]] = frozenset()
    webhooks: ClassVar[bool] = False

    def __init__(
        self, *, config: BaseModel, credentials: BaseModel, client: httpx.AsyncClient
    ) -> None:
        self.config = config
        self.credentials = credentials
        self.client = client

    @classmethod
    def authenticate(
        cls, config: BaseModel, credentials: BaseModel, context: AuthContext
    ) -> httpx.Auth | None:
        """The auth flow the engine puts on the client it hands this connector (None: the
        connector authenticates its requests itself, or needs no auth)."""
        return None

    @abstractmethod
    async def check(self) -> None:
        """Prove the configuration and credentials work; raise CheckFailed if they do not."""

    @abstractmethod
    def read(self, stream: Stream, cursor: str | None) -> AsyncIterator[Page]:
        """Pages of ``stream`` after ``cursor`` (None: from the start), each with its cursor."""

    @classmethod
    def streams_for(cls, config: BaseModel) -> frozenset[Stream]:
        """The streams a link with this config reads: all the connector's, unless the config
        names fewer (a manifest without campaigns)."""
        return cls.streams

    @classmethod
    def webhook_scheme(cls, config: BaseModel) -> WebhookScheme | None:
        """How the vendor signs the webhooks it pushes to a link with this config; None: it
        pushes none (its records come by polling only)."""
        return None

    @classmethod
    def webhook_pages(cls, config: BaseModel, body: bytes) -> list[Page]:
        """The records in a webhook's body (already verified), a page per stream, mapped as
        the connector maps what it reads; raise ``WebhookUnreadable`` for a body it cannot
        read. Pure: no HTTP, no state."""
        raise WebhookUnreadable(f"the {cls.name} connector reads no webhooks")

    async def act(self, action: Action, payload: dict[str, Any]) -> dict[str, Any]:
        raise ActionNotSupported(f"{self.name} cannot {action.value}")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """What a SPA needs to render the link form."""
        return {
            "name": cls.name,
            "title": cls.title,
            "description": cls.description,
            "streams": sorted(stream.value for stream in cls.streams),
            "actions": sorted(action.value for action in cls.actions),
            "webhooks": cls.webhooks,
            "config_schema": cls.config_model.model_json_schema(),
            "credentials_schema": cls.credentials_model.model_json_schema(),
        }
