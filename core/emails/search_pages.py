"""Page tokens of ListEmails (AIP-158), made by core.storage.page_tokens.

The list is newest first, ties broken by id (descending): a position is the last
email's (created_at, id), and the next page holds what sorts after it. Emails that
existed when paging started keep their place, so pages never repeat or skip one;
an email committed later shows up only if it sorts after the position. A token is
bound to the fingerprint of the account and filters
(core.emails.search.Filters.fingerprint).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.storage import page_tokens
from core.storage.page_tokens import micros

__all__ = ["Position", "decode", "encode", "micros"]
_RPC = "ListEmails"


@dataclass(frozen=True)
class Position:
    """The last email of a page: the next page starts after it."""

    created_at: datetime
    email_id: int


def encode(fingerprint: str, position: Position) -> str:
    return page_tokens.encode(_RPC, fingerprint, position.created_at, position.email_id)


def decode(token: str, fingerprint: str) -> Position:
    """The position `token` points at; InvalidArgument on `page_token` otherwise."""
    created_at, email_id = page_tokens.decode(token, _RPC, fingerprint, int)
    assert isinstance(email_id, int)
    return Position(created_at, email_id)
