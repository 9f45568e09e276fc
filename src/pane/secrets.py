"""Signing and encryption keys: from settings, or generated once and kept in the data folder.

Credential keys are a Fernet key ring (cryptography's ``MultiFernet``): the first key encrypts,
every key decrypts, so a new key can be put in front and old ciphertexts re-encrypted at leisure
by ``pane keys rotate``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from pane.config import Settings

_SIGNING_KEY_FILE = "token-signing.key"
_CREDENTIAL_KEYS_FILE = "credential-keys"


class CredentialDecryptError(Exception):
    """A stored secret was encrypted with a key that is no longer configured."""


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def _local_signing_key(data_dir: Path) -> str:
    path = data_dir / _SIGNING_KEY_FILE
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def local_credential_keys_path(settings: Settings) -> Path:
    return settings.data_dir / _CREDENTIAL_KEYS_FILE


def _local_credential_keys(settings: Settings) -> list[str]:
    path = local_credential_keys_path(settings)
    if not path.exists():
        _write_private(path, Fernet.generate_key().decode() + "\n")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def prepend_local_credential_key(settings: Settings) -> None:
    """Put a freshly generated key in front of the locally kept key ring."""
    keys = _local_credential_keys(settings)
    _write_private(
        local_credential_keys_path(settings),
        "\n".join([Fernet.generate_key().decode(), *keys]) + "\n",
    )


@dataclass(frozen=True)
class KeyRing:
    signing_key: bytes
    credentials: MultiFernet
    credential_keys_from_settings: bool

    def encrypt(self, plaintext: bytes) -> str:
        return self.credentials.encrypt(plaintext).decode()

    def decrypt(self, token: str) -> bytes:
        try:
            return self.credentials.decrypt(token.encode())
        except InvalidToken as exc:
            raise CredentialDecryptError(
                "stored credentials cannot be decrypted with the configured keys"
            ) from exc

    def rotate(self, token: str) -> str:
        try:
            return self.credentials.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise CredentialDecryptError(
                "stored credentials cannot be decrypted with the configured keys"
            ) from exc


def load_key_ring(settings: Settings) -> KeyRing:
    if settings.token_signing_key is not None:
        signing = settings.token_signing_key.get_secret_value()
    else:
        signing = _local_signing_key(settings.data_dir)
    if settings.credential_keys:
        keys = [key.get_secret_value() for key in settings.credential_keys]
    else:
        keys = _local_credential_keys(settings)
    return KeyRing(
        signing_key=signing.encode(),
        credentials=MultiFernet([Fernet(key) for key in keys]),
        credential_keys_from_settings=bool(settings.credential_keys),
    )
