"""Page tokens of ListSuppressions (AIP-158): opaque to callers, bound to the filters
they were made for, and pointing just past the last entry of their page.

The list is ordered newest first, ties broken by address (descending), so a position
is the last entry's (created_at, address) and the next page holds what sorts after it.
A token carries a fingerprint of the filters; given with other filters it is refused
rather than silently paging through a different list.
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
class Filters:
    """What a list call asks for; an empty or None field does not filter."""

    kind: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    address_prefix: str = ""  # normalized

    def fingerprint(self) -> str:
        parts = [self.kind, _micros(self.created_after), _micros(self.created_before), self.address_prefix]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Position:
    """The last entry of a page: the next page starts after it."""

    created_at: datetime
    address: str


def _micros(value: datetime | None) -> int | None:
    if value is None:
        return None
    return (value - _EPOCH) // timedelta(microseconds=1)


def encode(filters: Filters, position: Position) -> str:
    payload = {"v": VERSION, "f": filters.fingerprint(), "t": _micros(position.created_at), "a": position.address}
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(token: str, filters: Filters) -> Position:
    """The position `token` points at; InvalidArgument on `page_token` when it is not a
    token of this list or was made for other filters."""
    invalid = InvalidArgument([FieldViolation("page_token", "not a page token returned by ListSuppressions")])
    if len(token) > MAX_TOKEN or not token.isascii():
        raise invalid
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(payload, dict) or payload.get("v") != VERSION:
            raise ValueError(token)
        fingerprint, micros, address = payload["f"], payload["t"], payload["a"]
        if not (isinstance(fingerprint, str) and isinstance(micros, int) and isinstance(address, str)):
            raise ValueError(token)
        created_at = _EPOCH + timedelta(microseconds=micros)
    except (ValueError, KeyError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise invalid from None
    if fingerprint != filters.fingerprint():
        raise InvalidArgument([FieldViolation(
            "page_token", "was made for other filters: repeat the filters of the first call, or start without a token"
        )])
    return Position(created_at, address)
