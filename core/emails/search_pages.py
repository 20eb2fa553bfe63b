"""Page tokens of ListEmails (AIP-158): opaque to callers, bound to the account and
filters they were made for, pointing just past the last email of their page.

The list is newest first, ties broken by id (descending): a position is the last
email's (created_at, id), and the next page holds what sorts after it. Emails that
existed when paging started keep their place, so pages never repeat or skip one;
an email committed later shows up only if it sorts after the position.

A token carries a fingerprint of the account and filters (another account's token,
or one given with other filters, is refused) and a check over its fields, so an
edited token is refused instead of paging from a made-up place. The check is not a
secret: a forged position could only page the caller's own emails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.errors import FieldViolation, InvalidArgument

VERSION = 1
MAX_TOKEN = 1024
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Position:
    """The last email of a page: the next page starts after it."""

    created_at: datetime
    email_id: int


def micros(value: datetime | None) -> int | None:
    if value is None:
        return None
    return (value - _EPOCH) // timedelta(microseconds=1)


def _check(fingerprint: str, t: int, i: int) -> str:
    return hashlib.sha256(f"postwire.ListEmails:{fingerprint}:{t}:{i}".encode()).hexdigest()[:12]


def encode(fingerprint: str, position: Position) -> str:
    """`fingerprint`: the account's and filters' (core.emails.search.Filters.fingerprint)."""
    t = micros(position.created_at)
    assert t is not None
    payload = {"v": VERSION, "f": fingerprint, "t": t, "i": position.email_id,
               "c": _check(fingerprint, t, position.email_id)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, fingerprint: str) -> Position:
    """The position `token` points at; InvalidArgument on `page_token` when it is not a
    token of ListEmails (or was edited), or was made for another account or filters."""
    invalid = InvalidArgument([FieldViolation("page_token", "not a page token returned by ListEmails")])
    if len(token) > MAX_TOKEN or not token.isascii():
        raise invalid
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(payload, dict) or payload.get("v") != VERSION:
            raise ValueError(token)
        made_for, t, i, check = payload["f"], payload["t"], payload["i"], payload["c"]
        if not (isinstance(made_for, str) and type(t) is int and type(i) is int and isinstance(check, str)):
            raise ValueError(token)
        if check != _check(made_for, t, i):
            raise ValueError(token)
        created_at = _EPOCH + timedelta(microseconds=t)
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if made_for != fingerprint:
        raise InvalidArgument([FieldViolation(
            "page_token", "was made for other filters: repeat the filters of the first call, or start without a token"
        )])
    return Position(created_at, i)
