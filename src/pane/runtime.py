"""What a running API process holds: settings, engine, Redis, keys. Built in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from arq.connections import ArqRedis
from sqlalchemy.ext.asyncio import AsyncEngine

from pane.config import Settings
from pane.ratelimit import LoginLimiter
from pane.secrets import KeyRing
from pane.services.security import AccessTokens


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    # Read-only list endpoints run on asyncpg directly: no ORM, no SQLAlchemy pool bookkeeping.
    pool: asyncpg.Pool
    redis: ArqRedis
    keyring: KeyRing
    tokens: AccessTokens
    login_limiter: LoginLimiter
