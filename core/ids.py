"""Public identifiers: random, prefixed, never a database id."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


_UNIFORM = 4 * len(_ALPHABET)  # bytes below this map evenly onto the alphabet (248 of 256)
_TO_CHAR = bytes(ord(_ALPHABET[b % len(_ALPHABET)]) if b < _UNIFORM else 0 for b in range(256))
_REJECTED = bytes(range(_UNIFORM, 256))


def random_token(length: int) -> str:
    """A random base62 string of the given length (about 5.95 bits a character), from
    one read of the system's random source (not one per character); bytes past the
    last whole multiple of 62 are dropped, so every character is equally likely."""
    chars = b""
    while len(chars) < length:
        chars += secrets.token_bytes(length + 4).translate(_TO_CHAR, _REJECTED)
    return chars[:length].decode("ascii")


def new_message_id() -> str:
    """`msg_` + 24 random base62 characters (~143 bits)."""
    return "msg_" + random_token(24)


def new_template_id() -> str:
    """`tpl_` + 24 random base62 characters."""
    return "tpl_" + random_token(24)
