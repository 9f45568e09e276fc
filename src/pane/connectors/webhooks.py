"""How a vendor signs the webhooks it pushes, and how pane checks them.

The default is Standard Webhooks v1 (https://www.standardwebhooks.com): headers
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (a space-separated list of
``v1,<base64>`` entries, any one of which may match), an HMAC-SHA256 over
``{id}.{timestamp}.{body}`` keyed with the base64-decoded part of a ``whsec_`` secret, and a
timestamp within five minutes of now. A connector may declare another scheme (a
``generic_rest`` manifest's ``webhooks.signature``): an HMAC-SHA256 over the raw body in a
header of the vendor's choosing.

Written here rather than taken from the PyPI ``standardwebhooks`` package: its ``verify``
decodes the body as text and parses it as JSON inside the check (a body that is not UTF-8 or
not JSON fails as if its signature did), raises a bare ``ValueError`` on a malformed signature
entry, and takes one secret, where a link in rotation has two. The scheme itself is a dozen
lines of ``hmac``; every comparison is constant-time over the exact bytes received.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

SECRET_PREFIX = "whsec_"  # noqa: S105 (the marker of a secret, not one)
SECRET_BYTES = 32
DEFAULT_TOLERANCE_SECONDS = 300
# Longer entries or lists are not signatures: refused before any work is spent on them.
_MAX_SIGNATURE_HEADER = 4096
_MAX_ID = 256


def new_secret() -> str:
    """A fresh signing secret, ``whsec_`` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(SECRET_BYTES)).decode()


class SignatureRefused(Exception):
    """The request is not signed by a secret of the link; ``reason`` says what was wrong
    (never which secret came close)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class WebhookUnreadable(Exception):
    """A correctly signed body the connector cannot read records from; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Verified:
    """A delivery whose signature holds: the vendor's id for it (what duplicates share)."""

    webhook_id: str


class WebhookScheme(Protocol):
    """How one vendor signs. ``headers`` has lowercase names; ``secrets`` are the link's
    current secret and, during a rotation, the previous one."""

    def verify(
        self, secrets: Sequence[str], headers: Mapping[str, str], body: bytes, *, now: float
    ) -> Verified: ...

    def sign(self, secret: str, body: bytes, *, webhook_id: str, timestamp: int) -> dict[str, str]:
        """The headers a sender puts on ``body`` (the simulator and the tests send with it)."""
        ...


def _key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret: its base64 part, decoded."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a Standard Webhooks secret starts with whsec_")
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)


def _required(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise SignatureRefused(f"the {name} header is missing")
    return value


@dataclass(frozen=True, slots=True)
class StandardWebhooks:
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS

    def sign(self, secret: str, body: bytes, *, webhook_id: str, timestamp: int) -> dict[str, str]:
        digest = hmac.new(
            _key(secret), f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256
        ).digest()
        return {
            "webhook-id": webhook_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }

    def verify(
        self, secrets: Sequence[str], headers: Mapping[str, str], body: bytes, *, now: float
    ) -> Verified:
        webhook_id = _required(headers, "webhook-id")
        stamp = _required(headers, "webhook-timestamp")
        listed = _required(headers, "webhook-signature")
        if len(webhook_id) > _MAX_ID or not webhook_id.isprintable():
            raise SignatureRefused(f"webhook-id is not an id (printable, at most {_MAX_ID})")
        if len(listed) > _MAX_SIGNATURE_HEADER:
            raise SignatureRefused("webhook-signature is too long to be a list of signatures")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
            raise SignatureRefused("webhook-timestamp is not a Unix time in seconds")
        timestamp = int(stamp)
        if abs(now - timestamp) > self.tolerance_seconds:
            raise SignatureRefused(
                f"webhook-timestamp is more than {self.tolerance_seconds // 60} minutes"
                " from the time here: a replay, or a clock that is off"
            )
        offered = _v1_signatures(listed)
        signed = f"{webhook_id}.{timestamp}.".encode() + body
        expected = [hmac.new(_key(secret), signed, hashlib.sha256).digest() for secret in secrets]
        # Every pair is compared, so the time taken says nothing about which came close.
        matched = False
        for signature in offered:
            for digest in expected:
                matched |= hmac.compare_digest(signature, digest)
        if not matched:
            raise SignatureRefused("no webhook-signature entry matches a secret of this link")
        return Verified(webhook_id)


def _v1_signatures(listed: str) -> list[bytes]:
    """The decoded ``v1`` entries of a ``webhook-signature`` list; entries of other versions
    are skipped (a sender may add a newer scheme beside v1), a malformed one refuses all."""
    found: list[bytes] = []
    for entry in listed.split():
        version, comma, encoded = entry.partition(",")
        if not comma or not version:
            raise SignatureRefused(
                "webhook-signature entries are `<version>,<base64 signature>`, space-separated"
            )
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise SignatureRefused("a v1 webhook-signature entry is not base64") from None
    if not found:
        raise SignatureRefused("webhook-signature has no v1 entry (the version pane checks)")
    return found


@dataclass(frozen=True, slots=True)
class HmacSha256:
    """An HMAC-SHA256 over the raw body in one header, as hex or base64 after an optional
    prefix (GitHub's ``X-Hub-Signature-256: sha256=<hex>``). The key is the secret exactly as
    the reseller pasted it into the vendor's portal (the whole ``whsec_…`` text). Without a
    timestamp there is no replay window: deliveries are told apart by ``id_header`` or, when
    the vendor sends no id, by the digest of the body (an identical body is a duplicate)."""

    header: str
    prefix: str = ""
    encoding: Literal["hex", "base64"] = "hex"
    id_header: str | None = None

    def _digest(self, secret: str, body: bytes) -> bytes:
        return hmac.new(secret.encode(), body, hashlib.sha256).digest()

    def sign(self, secret: str, body: bytes, *, webhook_id: str, timestamp: int) -> dict[str, str]:
        digest = self._digest(secret, body)
        text = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        signed = {self.header.lower(): self.prefix + text}
        if self.id_header:
            signed[self.id_header.lower()] = webhook_id
        return signed

    def verify(
        self, secrets: Sequence[str], headers: Mapping[str, str], body: bytes, *, now: float
    ) -> Verified:
        sent = _required(headers, self.header.lower())
        if len(sent) > _MAX_SIGNATURE_HEADER or not sent.startswith(self.prefix):
            raise SignatureRefused(f"{self.header} is not `{self.prefix}<signature>`")
        encoded = sent.removeprefix(self.prefix).strip()
        try:
            offered = (
                bytes.fromhex(encoded)
                if self.encoding == "hex"
                else base64.b64decode(encoded, validate=True)
            )
        except (binascii.Error, ValueError):
            raise SignatureRefused(f"{self.header} is not {self.encoding}") from None
        matched = False
        for secret in secrets:
            matched |= hmac.compare_digest(offered, self._digest(secret, body))
        if not matched:
            raise SignatureRefused(f"{self.header} does not match a secret of this link")
        if self.id_header:
            webhook_id = _required(headers, self.id_header.lower())
            if len(webhook_id) > _MAX_ID or not webhook_id.isprintable():
                raise SignatureRefused(f"{self.id_header} is not an id")
            return Verified(webhook_id)
        return Verified("sha256:" + hashlib.sha256(body).hexdigest())
