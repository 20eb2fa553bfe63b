"""Signed tokens for what comes back: the VERP return path of a sent email
(`b+<token>@<bounce domain>`) and its one-click unsubscribe link and mailto
(`u+<token>`).

A token names the account, the email (its public id) and, for unsubscribe, the
recipient, and carries an HMAC-SHA256 under a key derived from POSTWIRE_SECRET_KEY, so
a forged or altered token is refused and nobody can unsubscribe or bounce someone else.
The recipient travels as an index into the email's recipients, so the token does not
reveal the address. Tokens are short, lower-case safe (local parts are often
lower-cased on the way back) and contain only [a-z0-9].
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

BOUNCE, UNSUBSCRIBE = "b", "u"
_MAC_BYTES = 8
_KINDS = {BOUNCE: 1, UNSUBSCRIBE: 2}
_MAX_MESSAGE_ID = 28  # msg_ + 24 characters


@dataclass(frozen=True)
class Claim:
    kind: str  # BOUNCE or UNSUBSCRIBE
    account_id: int
    message_id: str  # the email's public id (msg_...)
    recipient: int = -1  # index into the email's envelope recipients; -1: the whole email


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _unb32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


class Tokens:
    def __init__(self, server_secret: str) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"postwire return tokens v1").derive(
            server_secret.encode()
        )

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_MAC_BYTES]

    def make(self, claim: Claim) -> str:
        """At most 61 characters, so `b+<token>` fits a local part (64, RFC 5321)."""
        message = claim.message_id.removeprefix("msg_").encode()
        if len(message) > _MAX_MESSAGE_ID - 4 or not 0 <= claim.account_id < 2**32 or not -1 <= claim.recipient < 2**15:
            raise ValueError("claim out of range for a token")
        payload = claim.account_id.to_bytes(4, "big") + (claim.recipient + 1).to_bytes(2, "big") + message
        return _b32(payload + self._mac(bytes([_KINDS[claim.kind]]) + payload))  # the kind is signed, not carried

    def read(self, token: str, kind: str) -> Claim | None:
        """The claim of a genuine token of that kind; None for anything else."""
        if not token or len(token) > 200 or not token.isalnum() or not token.isascii():
            return None
        token = token.lower()
        try:
            raw = _unb32(token)
        except ValueError:
            return None
        if _b32(raw) != token:  # the last character's unused bits differ: not a token we issued
            return None
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(payload) < 7 or not hmac.compare_digest(mac, self._mac(bytes([_KINDS[kind]]) + payload)):
            return None
        try:
            message = payload[6:].decode("ascii")
        except UnicodeDecodeError:
            return None
        return Claim(kind, int.from_bytes(payload[:4], "big"), "msg_" + message, int.from_bytes(payload[4:6], "big") - 1)

    def address(self, claim: Claim, domain: str) -> str:
        """`b+<token>@domain` (or `u+...`)."""
        return f"{claim.kind}+{self.make(claim)}@{domain}"

    def read_address(self, address: str) -> Claim | None:
        """The claim of a `b+<token>@...` / `u+<token>@...` address; None if not one of ours."""
        local = address.rpartition("@")[0].lower()
        kind, plus, token = local.partition("+")
        if not plus or kind not in (BOUNCE, UNSUBSCRIBE):
            return None
        return self.read(token, kind)
