"""API keys: shown once, stored as HMAC-SHA256(server secret, key), found by prefix."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from core.db import database_errors_as_unavailable
from core.errors import Unauthenticated
from core.ids import random_token
from core.store import Store

PREFIX_LENGTH = 16  # "pw_live_" + 8 random characters, stored in clear for lookup
KINDS = ("live", "test")


@dataclass(frozen=True)
class NewKey:
    key: str  # the only time the whole key exists outside the caller
    prefix: str


def generate_key(kind: str = "live") -> NewKey:
    if kind not in KINDS:
        raise ValueError(f"key kind must be one of {KINDS}")
    key = f"pw_{kind}_" + random_token(40)
    return NewKey(key=key, prefix=key[:PREFIX_LENGTH])


def hash_key(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


async def create_key(store: Store, secret: str, account_id: int, name: str, kind: str = "live") -> str:
    """Create and store a key for the account; returns the key (shown once)."""
    new = generate_key(kind)
    await store.add_api_key(account_id, name, new.prefix, hash_key(secret, new.key))
    return new.key


async def authenticate(store: Store, secret: str, key: str) -> int:
    """The account id that owns `key`; Unauthenticated (one message) otherwise."""
    if not key.startswith("pw_") or len(key) <= PREFIX_LENGTH:
        raise Unauthenticated()
    async with database_errors_as_unavailable():
        found = await store.find_api_key(key[:PREFIX_LENGTH])
    if found is None:
        raise Unauthenticated()
    account_id, stored_hash = found
    if not hmac.compare_digest(stored_hash, hash_key(secret, key)):
        raise Unauthenticated()
    return account_id
