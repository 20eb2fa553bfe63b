"""Public identifiers: random, prefixed, never a database id."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def random_token(length: int) -> str:
    """A random base62 string of the given length (about 5.95 bits a character)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def new_message_id() -> str:
    """`msg_` + 24 random base62 characters (~143 bits)."""
    return "msg_" + random_token(24)
