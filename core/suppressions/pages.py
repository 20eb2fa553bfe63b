"""Page tokens of ListSuppressions (AIP-158), made by core.storage.page_tokens.

The list is ordered newest first, ties broken by address (descending), so a position
is the last entry's (created_at, address) and the next page holds what sorts after it.
A token is bound to the fingerprint of the filters it was made for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from core.storage import page_tokens
from core.storage.page_tokens import micros

_RPC = "ListSuppressions"


@dataclass(frozen=True)
class Filters:
    """What a list call asks for; an empty or None field does not filter."""

    kind: str = ""
    created_after: datetime | None = None
    created_before: datetime | None = None
    address_prefix: str = ""  # normalized

    def fingerprint(self) -> str:
        parts = [self.kind, micros(self.created_after), micros(self.created_before), self.address_prefix]
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Position:
    """The last entry of a page: the next page starts after it."""

    created_at: datetime
    address: str


def encode(filters: Filters, position: Position) -> str:
    return page_tokens.encode(_RPC, filters.fingerprint(), position.created_at, position.address)


def decode(token: str, filters: Filters) -> Position:
    """The position `token` points at; InvalidArgument on `page_token` when it is not a
    token of this list or was made for other filters."""
    created_at, address = page_tokens.decode(token, _RPC, filters.fingerprint(), str)
    assert isinstance(address, str)
    return Position(created_at, address)
