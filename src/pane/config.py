"""One pydantic-settings object; every variable is prefixed with ``PANE_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

import platformdirs
from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("pane", appauthor=False))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PANE_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="Runtime connection, as the non-owner role pane_app. "
        "Unset: an embedded PostgreSQL under data_dir.",
    )
    migration_database_url: str | None = Field(
        default=None,
        description="Owner connection for `pane migrate` and operator commands. "
        "Unset: same as database_url.",
    )
    redis_url: str | None = Field(default=None, description="Unset: an embedded Redis.")
    data_dir: Path = Field(default_factory=default_data_dir)

    token_signing_key: SecretStr | None = Field(
        default=None,
        description="HMAC key for access tokens. Unset: generated once and kept in data_dir.",
    )
    credential_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Fernet keys, comma separated, newest first: the first encrypts, all decrypt. "
        "Unset: one key generated once and kept in data_dir.",
    )
    access_token_ttl_seconds: int = Field(default=900, ge=30)
    refresh_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=300)
    invitation_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=300)

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    db_pool_size: int = Field(default=20, ge=1, description="Connections per API process.")
    database_transaction_pooler: bool = Field(
        default=False,
        description="PANE_DATABASE_URL goes through a pooler in transaction mode (pgbouncer "
        "`pool_mode = transaction`): pane then keeps no prepared statement past a transaction.",
    )

    allow_private_vendor_urls: bool = Field(
        default=False,
        description="Let links reach private, loopback and link-local addresses (the demo's "
        "simulated vendors). Off in production: vendor URLs are user input.",
    )
    vendor_rate_limit: str = Field(
        default="20/second", description="Requests per link to its vendor, across all workers."
    )
    sync_lease_seconds: int = Field(
        default=60, ge=5, description="A sync's hold on its link; renewed while it runs."
    )
    sync_job_timeout_seconds: int = Field(
        default=3600,
        ge=10,
        description="Longest one sync job may run; a worker killed mid-sync has its job "
        "picked up again this long (+10 s) after it started.",
    )
    sync_http_attempts: int = Field(default=5, ge=1)
    worker_schedule: bool = Field(
        default=True,
        description="Run the scheduler (every minute: enqueue the links that are due) in this "
        "worker. Any number of workers may; each tick runs once.",
    )
    worker_max_jobs: int = Field(default=10, ge=1, description="Jobs one worker runs at once.")
    worker_db_pool_size: int = Field(
        default=24,
        ge=1,
        description="Connections per worker: a sync writes two pages at once, each on its own "
        "connection, so two for each job it runs at once, and a few for leases and the outbox.",
    )
    sync_retry_initial_wait: float = Field(default=0.5, ge=0)
    stream_ping_seconds: float = Field(
        default=15, gt=0, description="Seconds between keep-alive comments on change streams."
    )
    change_retention_days: int = Field(
        default=30,
        ge=1,
        description="Days the change feed keeps events; a position older than that gets 410.",
    )

    login_limit_per_account: str = "10/15 minutes"
    login_limit_per_ip: str = "50/15 minutes"
    log_level: str = "INFO"
    log_json: bool = True
    freeze_startup_objects: bool = Field(
        default=True,
        description="Once started, keep what startup built out of the garbage collector's full "
        "collections (pane.heap). Off where a process starts and drops apps and needs them "
        "collected (the test suite).",
    )

    @field_validator("credential_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("credential_keys")
    @classmethod
    def _valid_fernet_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for key in value:
            try:
                Fernet(key.get_secret_value())
            except ValueError as exc:
                raise ValueError(
                    "each credential key must be a url-safe base64 Fernet key of 32 bytes"
                ) from exc
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_redis(self) -> bool:
        return self.redis_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
