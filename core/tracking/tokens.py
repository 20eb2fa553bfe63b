"""Tracking tokens (`/t/o/<token>`, `/t/c/<token>`): authenticated encryption, so a
token reveals nothing (no readable account, email, recipient or URL) and cannot be
forged or altered.

AES-SIV (RFC 5297, `cryptography`'s AESSIV) under a 512-bit key derived with HKDF from
POSTWIRE_SECRET_KEY. SIV needs no nonce, so a token is only its 16-byte tag and the
ciphertext: the same link of the same email gives the same token. The plaintext is

    kind (1: open, 2: click) | account id (4) | recipient index + 1 (2) |
    message id length (1) | message id without `msg_` | the link's URL (clicks)

A click redirects only to the URL sealed in its token: nothing in the request can name
another target, and no table of URLs has to be kept. `read` refuses anything that is not
of the right shape before decrypting, and decrypting costs a few microseconds, so a flood
of made-up tokens never reaches the database.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

OPEN, CLICK = "open", "click"
_KINDS = {OPEN: 1, CLICK: 2}
_NAMES = {v: k for k, v in _KINDS.items()}
_AD = [b"postwire tracking v1"]
MAX_TOKEN = 4096  # characters: a click token carries its URL (validation bounds the html anyway)
_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,4096}")


@dataclass(frozen=True)
class Claim:
    kind: str  # OPEN or CLICK
    account_id: int
    message_id: str  # the email's public id (msg_...)
    recipient: int = -1  # index into the email's envelope recipients; -1: not known (several recipients)
    url: str = ""  # the link's target (CLICK)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


class TrackingTokens:
    def __init__(self, server_secret: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=b"postwire tracking tokens v1").derive(
            server_secret.encode()
        )
        self._siv = AESSIV(key)

    def make(self, claim: Claim) -> str:
        message = claim.message_id.removeprefix("msg_").encode("ascii")
        if len(message) > 255 or not 0 <= claim.account_id < 2**32 or not -1 <= claim.recipient < 2**16 - 1:
            raise ValueError("claim out of range for a token")
        plain = (bytes([_KINDS[claim.kind]]) + claim.account_id.to_bytes(4, "big")
                 + (claim.recipient + 1).to_bytes(2, "big") + bytes([len(message)]) + message
                 + claim.url.encode("utf-8"))
        return _b64(self._siv.encrypt(plain, _AD))

    def read(self, token: str, kind: str) -> Claim | None:
        """The claim of a genuine token of that kind; None for anything else."""
        if not _SHAPE.fullmatch(token) or len(token) % 4 == 1:
            return None
        try:
            plain = self._siv.decrypt(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), _AD)
        except (InvalidTag, ValueError):
            return None
        if len(plain) < 8 or _NAMES.get(plain[0]) != kind or len(plain) < 8 + plain[7]:
            return None
        try:
            message = plain[8:8 + plain[7]].decode("ascii")
            url = plain[8 + plain[7]:].decode("utf-8")
        except UnicodeDecodeError:
            return None
        return Claim(kind, int.from_bytes(plain[1:5], "big"), "msg_" + message, int.from_bytes(plain[5:7], "big") - 1, url)
