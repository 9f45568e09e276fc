"""Passwords (argon2), opaque tokens (stored as SHA-256) and access tokens (JWT, HS256).

JWTs use joserfc, authlib's maintained successor to ``authlib.jose`` (deprecated upstream).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from pane.errors import Unauthenticated

_hasher = PasswordHasher()
# Verifying against this keeps a login for an unknown email as slow as one with a wrong password.
_DUMMY_HASH = _hasher.hash("pane-timing-equaliser")

API_KEY_PREFIX = "pane_"
_ALGORITHM = "HS256"
_claims = jwt.JWTClaimsRegistry(
    exp={"essential": True}, sub={"essential": True}, typ={"essential": True, "value": "access"}
)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_opaque_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def new_api_key() -> tuple[str, str]:
    """Return the key (shown once) and the prefix kept for recognising it in listings."""
    key = new_opaque_token(API_KEY_PREFIX)
    return key, key[: len(API_KEY_PREFIX) + 8]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    workspace_id: uuid.UUID | None
    # The role when the token was issued; every use re-checks membership and role in the
    # database, so a stale claim can never grant more than the member has now.
    role: str | None
    expires_at: int


class AccessTokens:
    """Issues and verifies access tokens. A verified token's claims are remembered (bounded),
    so a client's repeated requests pay for the signature check once; expiry is still checked
    on every use."""

    _CACHE_SIZE = 4096

    def __init__(self, signing_key: bytes, ttl_seconds: int) -> None:
        self._key = OctKey.import_key(signing_key)
        self.ttl_seconds = ttl_seconds
        self._verified: dict[str, AccessClaims] = {}

    def issue(
        self, *, user_id: uuid.UUID, workspace_id: uuid.UUID | None, role: str | None = None
    ) -> str:
        now = int(time.time())
        claims: dict[str, object] = {
            "sub": str(user_id),
            "typ": "access",
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": secrets.token_hex(8),
        }
        if workspace_id is not None:
            claims["wid"] = str(workspace_id)
        if role is not None:
            claims["rol"] = role
        return jwt.encode({"alg": _ALGORITHM}, claims, self._key)

    def verify(self, token: str) -> AccessClaims:
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signature_and_claims(token)
            if len(self._verified) >= self._CACHE_SIZE:
                self._verified.clear()
            self._verified[token] = claims
        elif claims.expires_at <= time.time():
            del self._verified[token]
            raise Unauthenticated("access token rejected: the token has expired")
        return claims

    def _verify_signature_and_claims(self, token: str) -> AccessClaims:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[_ALGORITHM])
            _claims.validate(decoded.claims)
            wid = decoded.claims.get("wid")
            return AccessClaims(
                user_id=uuid.UUID(decoded.claims["sub"]),
                workspace_id=uuid.UUID(wid) if wid else None,
                role=decoded.claims.get("rol"),
                expires_at=int(decoded.claims["exp"]),
            )
        except JoseError as exc:
            raise Unauthenticated(f"access token rejected: {exc.description or exc.error}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise Unauthenticated("access token rejected: malformed claims") from exc
