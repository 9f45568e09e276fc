"""What a running API process holds: settings, the database, Redis, keys. Built in the
lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from arq.connections import ArqRedis

from pane.config import Settings
from pane.db.database import Database
from pane.ratelimit import LoginLimiter
from pane.secrets import KeyRing
from pane.services.hub import Hub
from pane.services.links import LinkCheck
from pane.services.security import AccessTokens


@dataclass
class Runtime:
    settings: Settings
    database: Database
    redis: ArqRedis
    keyring: KeyRing
    tokens: AccessTokens
    login_limiter: LoginLimiter
    hub: Hub
    # proves a link works against its vendor before it is saved (pane.sync.connect)
    link_check: LinkCheck
