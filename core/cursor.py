"""Opaque stream cursors. Clients must not parse them; the format may change."""

from __future__ import annotations

import base64
import binascii

from core.errors import FieldViolation, InvalidArgument

_VERSION = b"e1:"


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(_VERSION + str(event_id).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, field: str = "after") -> int:
    """The event id in a cursor; "" means the start of the log (0)."""
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if raw.startswith(_VERSION):
            value = int(raw[len(_VERSION) :].decode("ascii"))
            if value >= 0:
                return value
    except (binascii.Error, ValueError, UnicodeDecodeError):
        pass
    raise InvalidArgument([FieldViolation(field, "not a cursor returned by this service")])
