"""Page tokens (AIP-158) of every List RPC: opaque to callers, bound to the list and
filters they were made for, pointing just past the last entry of their page.

A position is the last entry's (time, key): lists are newest first with ties broken
by the key, so the next page holds what sorts after it and pages neither repeat nor
skip while rows keep arriving. A token carries the caller's fingerprint of the
account and filters (given with other ones it is refused rather than silently paging
through a different list) and a check over its fields, so an edited token is refused
instead of paging from a made-up place. The check is not a secret: a forged position
could only page the caller's own list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import UTC, datetime, timedelta

from core.errors import FieldViolation, InvalidArgument

VERSION = 1
MAX_TOKEN = 1024
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Key = int | str


def micros(value: datetime | None) -> int | None:
    """`value` as whole microseconds since the epoch (None stays None): fingerprints and
    tokens carry times exactly."""
    if value is None:
        return None
    return (value - EPOCH) // timedelta(microseconds=1)


def _check(rpc: str, fingerprint: str, t: int, key: Key) -> str:
    return hashlib.sha256(json.dumps([rpc, fingerprint, t, key]).encode()).hexdigest()[:12]


def encode(rpc: str, fingerprint: str, at: datetime, key: Key) -> str:
    """The token of the page after the entry at (`at`, `key`) in `rpc`'s list."""
    t = micros(at)
    assert t is not None
    payload = {"v": VERSION, "f": fingerprint, "t": t, "k": key, "c": _check(rpc, fingerprint, t, key)}
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, rpc: str, fingerprint: str, key_type: type[int] | type[str]) -> tuple[datetime, Key]:
    """The (time, key) `token` points at; InvalidArgument on `page_token` when it is not
    a token of `rpc` (or was edited), or was made for another account or filters."""
    invalid = InvalidArgument([FieldViolation("page_token", f"not a page token returned by {rpc}")])
    if len(token) > MAX_TOKEN or not token.isascii():
        raise invalid
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(payload, dict) or payload.get("v") != VERSION:
            raise ValueError(token)
        made_for, t, key, check = payload["f"], payload["t"], payload["k"], payload["c"]
        if not (isinstance(made_for, str) and type(t) is int and type(key) is key_type and isinstance(check, str)):
            raise ValueError(token)
        if check != _check(rpc, made_for, t, key):
            raise ValueError(token)
        at = EPOCH + timedelta(microseconds=t)
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if made_for != fingerprint:
        raise InvalidArgument([FieldViolation(
            "page_token", "was made for other filters: repeat the filters of the first call, or start without a token"
        )])
    return at, key
