"""API keys: shown once, stored as HMAC-SHA256(server secret, key), found by prefix.

A key carries scopes (send, read, events, admin), a kind (live, or test: nothing
reaches SMTP), an optional expiry and optional per-key budgets.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.errors import FieldViolation, InvalidArgument, NotFound, Unauthenticated
from core.ids import random_token
from core.keys.store import KeyRecord, KeyStore, NewKey
from core.storage.db import database_errors_as_unavailable
from core.times import utcnow

PREFIX_LENGTH = 16  # "pw_live_" + 8 random characters, stored in clear for lookup
KINDS = ("live", "test")
SCOPES = ("send", "read", "events", "admin")
DEFAULT_SCOPES = frozenset({"send", "read", "events"})
CACHE_TTL = 0.5  # seconds a server may act on a key it read; revocation shows within a second


@dataclass(frozen=True)
class Principal:
    """Who is calling: the account, the key, and what the key may do."""

    account_id: int
    key_id: str
    scopes: frozenset[str]
    test: bool = False
    send_per_minute: int | None = None
    read_per_minute: int | None = None
    max_streams: int | None = None
    account_send_per_minute: int | None = None
    account_read_per_minute: int | None = None


@dataclass(frozen=True)
class GeneratedKey:
    key: str  # the only time the whole key exists outside the caller
    prefix: str


@dataclass(frozen=True)
class KeyOptions:
    name: str
    kind: str = "live"
    scopes: frozenset[str] = field(default_factory=lambda: DEFAULT_SCOPES)
    expires_at: datetime | None = None
    send_per_minute: int | None = None
    read_per_minute: int | None = None
    max_streams: int | None = None


def generate_key(kind: str = "live") -> GeneratedKey:
    if kind not in KINDS:
        raise ValueError(f"key kind must be one of {KINDS}")
    key = f"pw_{kind}_" + random_token(40)
    return GeneratedKey(key=key, prefix=key[:PREFIX_LENGTH])


def hash_key(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def _violations(options: KeyOptions) -> list[FieldViolation]:
    out = []
    if not options.name.strip() or len(options.name) > 200:
        out.append(FieldViolation("name", "required, at most 200 characters"))
    if options.kind not in KINDS:
        out.append(FieldViolation("kind", "must be live or test"))
    if not options.scopes or not options.scopes <= set(SCOPES):
        out.append(FieldViolation("scopes", f"at least one of {', '.join(SCOPES)}"))
    if options.expires_at is not None and options.expires_at <= utcnow():
        out.append(FieldViolation("expires_at", "must be in the future"))
    for name in ("send_per_minute", "read_per_minute", "max_streams"):
        value = getattr(options, name)
        if value is not None and not 0 < value <= 1_000_000:
            out.append(FieldViolation(name, "between 1 and 1000000 (0 or unset: the server default)"))
    return out


def principal(record: KeyRecord) -> Principal:
    return Principal(
        account_id=record.account_id,
        key_id=record.public_id,
        scopes=record.scopes,
        test=record.kind == "test",
        send_per_minute=record.send_per_minute,
        read_per_minute=record.read_per_minute,
        max_streams=record.max_streams,
        account_send_per_minute=record.account_send_per_minute,
        account_read_per_minute=record.account_read_per_minute,
    )


class KeyManager:
    def __init__(self, store: KeyStore, secret: str, cache_ttl: float = CACHE_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.secret = secret
        self.cache_ttl = cache_ttl
        self.clock = clock
        # prefix -> (read at, record, its Principal): one Principal per record read, so
        # the layers after auth may cache by it (server.ratelimit's budget sets).
        self._cache: dict[str, tuple[float, KeyRecord | None, Principal | None]] = {}
        self._loading: dict[str, asyncio.Future[tuple[KeyRecord | None, Principal | None]]] = {}

    async def create(self, account_id: int, options: KeyOptions) -> tuple[KeyRecord, str]:
        """Create a key; returns its record and the key itself (shown once)."""
        violations = _violations(options)
        if violations:
            raise InvalidArgument(violations)
        generated = generate_key(options.kind)
        new = NewKey(
            public_id="key_" + random_token(20),
            name=options.name,
            prefix=generated.prefix,
            key_hash=hash_key(self.secret, generated.key),
            kind=options.kind,
            scopes=frozenset(options.scopes),
            expires_at=options.expires_at,
            send_per_minute=options.send_per_minute,
            read_per_minute=options.read_per_minute,
            max_streams=options.max_streams,
        )
        async with database_errors_as_unavailable():
            return await self.store.add(account_id, new), generated.key

    async def list(self, account_id: int) -> list[KeyRecord]:
        async with database_errors_as_unavailable():
            return await self.store.list(account_id)

    async def revoke(self, account_id: int, public_id: str) -> KeyRecord:
        async with database_errors_as_unavailable():
            record = await self.store.revoke(account_id, public_id)
        if record is None:
            raise NotFound(f"no API key {public_id!r}")
        self._cache.pop(record.prefix, None)
        self._loading.pop(record.prefix, None)  # a read begun before the revocation is not cached
        return record

    async def authenticate(self, key: str) -> Principal:
        """The caller behind `key`; Unauthenticated, with one message, for a missing,
        unknown, revoked or expired key."""
        if not key.startswith("pw_") or len(key) <= PREFIX_LENGTH or len(key) > 200:
            raise Unauthenticated()
        record, found = await self._lookup(key[:PREFIX_LENGTH])
        if record is None or found is None or not hmac.compare_digest(record.key_hash, hash_key(self.secret, key)):
            raise Unauthenticated()
        if record.revoked_at is not None or (record.expires_at is not None and record.expires_at <= utcnow()):
            raise Unauthenticated()
        return found

    async def _lookup(self, prefix: str) -> tuple[KeyRecord | None, Principal | None]:
        now = self.clock()
        cached = self._cache.get(prefix)
        if cached is not None and now - cached[0] < self.cache_ttl:
            return cached[1], cached[2]
        # One read per prefix at a time: the calls that find the entry expired together
        # share it instead of each asking the database.
        loading = self._loading.get(prefix)
        if loading is None:
            loading = self._loading[prefix] = asyncio.ensure_future(self._load(prefix, now))
            loading.add_done_callback(lambda done: self._forget_load(prefix, done))
        return await asyncio.shield(loading)

    async def _load(self, prefix: str, now: float) -> tuple[KeyRecord | None, Principal | None]:
        async with database_errors_as_unavailable():
            record = await self.store.by_prefix(prefix)
        if len(self._cache) > 10_000:
            self._cache.clear()
        found = principal(record) if record is not None else None
        if self._loading.get(prefix) is asyncio.current_task():  # not revoked meanwhile
            self._cache[prefix] = (now, record, found)
        return record, found

    def _forget_load(self, prefix: str, done: asyncio.Future[Any]) -> None:
        if self._loading.get(prefix) is done:
            del self._loading[prefix]
