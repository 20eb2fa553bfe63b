"""Opaque stream cursors. Clients must not parse them; the format may change.

A cursor names a position in an account's event log: the writing transaction's id
and the event id (see core/events/log.py for why both).
"""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

from core.errors import FieldViolation, InvalidArgument

_V2 = b"e2:"
_V1 = b"e1:"  # event id only (before transaction ids were recorded)


class Position(NamedTuple):
    """A point in the log; events sort by (txid, id)."""

    txid: int
    id: int


START = Position(-1, 0)
_MAX = 2**63 - 1  # BIGINT: a larger number is no position of ours (and the database refuses it)


def encode_cursor(position: Position) -> str:
    raw = _V2 + f"{position.txid}.{position.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "after") -> Position | int:
    """The position in a cursor; START for "". A legacy cursor gives a bare event id,
    which the event log turns into a position."""
    if not cursor:
        return START
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if raw.startswith(_V2):
            txid, _, event_id = raw[len(_V2) :].decode("ascii").partition(".")
            position = Position(int(txid), int(event_id))
            if 0 <= position.txid <= _MAX and 0 <= position.id <= _MAX:
                return position
        elif raw.startswith(_V1):
            value = int(raw[len(_V1) :].decode("ascii"))
            if 0 <= value <= _MAX:
                return value
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    raise InvalidArgument([FieldViolation(field, "not a cursor returned by this service")])
