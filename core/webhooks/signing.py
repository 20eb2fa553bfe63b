"""Standard Webhooks signing (https://www.standardwebhooks.com), and the encryption of
endpoint secrets at rest.

A secret is `whsec_` + base64 of random bytes; the HMAC key is those bytes. A delivery
carries `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature`: one
or more space-separated `v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
_SEALED_PREFIX = "v1:"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key_bytes(secret: str) -> bytes:
    """The HMAC key of a `whsec_...` secret."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    """One `v1,<signature>` entry."""
    content = f"{webhook_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Sequence[str], webhook_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` value: a signature per secret (current first)."""
    return " ".join(sign(s, webhook_id, timestamp, body) for s in secrets_)


def webhook_headers(secrets_: Sequence[str], webhook_id: str, timestamp: int, body: str) -> dict[str, str]:
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


class SecretBox:
    """Encrypts endpoint secrets at rest: AES-256-GCM under a key derived (HKDF-SHA256)
    from POSTWIRE_SECRET_KEY, with the endpoint's public id as associated data so a
    sealed secret cannot be moved to another endpoint."""

    def __init__(self, server_secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"postwire webhook secrets v1").derive(
            server_secret.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, secret: str, endpoint_id: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), endpoint_id.encode())
        return _SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, sealed: str, endpoint_id: str) -> str:
        if not sealed.startswith(_SEALED_PREFIX):
            raise ValueError("not a sealed webhook secret")
        raw = base64.urlsafe_b64decode(sealed[len(_SEALED_PREFIX) :])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], endpoint_id.encode()).decode()
        except InvalidTag as exc:
            raise ValueError("webhook secret cannot be decrypted (was POSTWIRE_SECRET_KEY changed?)") from exc
