"""The key cache (one read per prefix at a time, revocation not undone by a read in
flight), the shared failed-login budget, and the rate limit budget sets built once."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timezone
from typing import Any

import pytest

from core.errors import Unauthenticated
from core.keys.manager import KeyManager, Principal, generate_key, hash_key
from core.keys.store import KeyRecord
from core.limits.local import LocalRateLimiter
from server.auth_failures import FailedLogins
from server.policy import policy_for
from server.ratelimit import Defaults, RateLimitInterceptor

SECRET = "s" * 32


class SlowStore:
    """A KeyStore stand-in: counts reads, each taking `delay` seconds."""

    def __init__(self, record: KeyRecord, delay: float = 0.05) -> None:
        self.record, self.delay, self.reads = record, delay, 0

    async def by_prefix(self, prefix: str) -> KeyRecord | None:
        self.reads += 1
        record = self.record
        await asyncio.sleep(self.delay)
        return record if record.prefix == prefix else None

    async def revoke(self, account_id: int, public_id: str) -> KeyRecord:
        self.record = dataclasses.replace(self.record, revoked_at=datetime.now(timezone.utc))
        return self.record


def record_for(key: str, prefix: str) -> KeyRecord:
    return KeyRecord(
        id=1, public_id="key_1", account_id=7, name="k", prefix=prefix, key_hash=hash_key(SECRET, key),
        kind="live", scopes=frozenset({"read"}), created_at=datetime.now(timezone.utc), expires_at=None,
        revoked_at=None, send_per_minute=None, read_per_minute=None, max_streams=None,
    )


@pytest.fixture
def key_and_store() -> tuple[str, SlowStore]:
    generated = generate_key()
    return generated.key, SlowStore(record_for(generated.key, generated.prefix))


async def test_concurrent_misses_share_one_read_and_one_principal(key_and_store: tuple[str, Any]) -> None:
    key, store = key_and_store
    keys = KeyManager(store, SECRET)  # type: ignore[arg-type]
    principals = await asyncio.gather(*(keys.authenticate(key) for _ in range(20)))
    assert store.reads == 1
    assert all(p is principals[0] for p in principals)
    assert (await keys.authenticate(key)) is principals[0]  # cached: same object
    assert store.reads == 1


async def test_cache_expires_after_ttl(key_and_store: tuple[str, Any]) -> None:
    key, store = key_and_store
    now = [0.0]
    keys = KeyManager(store, SECRET, cache_ttl=0.5, clock=lambda: now[0])  # type: ignore[arg-type]
    await keys.authenticate(key)
    now[0] = 0.49
    await keys.authenticate(key)
    assert store.reads == 1
    now[0] = 0.5
    await keys.authenticate(key)
    assert store.reads == 2


async def test_revocation_is_not_undone_by_a_read_in_flight(key_and_store: tuple[str, Any]) -> None:
    key, store = key_and_store
    keys = KeyManager(store, SECRET)  # type: ignore[arg-type]
    in_flight = asyncio.ensure_future(keys.authenticate(key))
    await asyncio.sleep(0.01)  # the read has started, before the revocation
    await keys.revoke(7, "key_1")
    await in_flight  # read before the revocation: may still answer
    with pytest.raises(Unauthenticated):
        await keys.authenticate(key)  # but was not cached


async def test_wrong_key_with_a_known_prefix_is_refused(key_and_store: tuple[str, Any]) -> None:
    key, store = key_and_store
    keys = KeyManager(store, SECRET)  # type: ignore[arg-type]
    with pytest.raises(Unauthenticated):
        await keys.authenticate(key[:-1] + ("a" if key[-1] != "a" else "b"))


async def test_failed_logins_block_an_address_past_its_budget() -> None:
    failures = FailedLogins(LocalRateLimiter(), per_minute=2)
    assert failures.blocked_for("10.0.0.1") == 0.0
    assert await failures.failed("10.0.0.1") == 0.0
    assert await failures.failed("10.0.0.1") == 0.0
    blocked = await failures.failed("10.0.0.1")
    assert 59 < blocked <= 60
    assert 59 < failures.blocked_for("10.0.0.1") <= 60
    assert failures.blocked_for("10.0.0.2") == 0.0  # per address


def test_budget_sets_are_built_once_per_key() -> None:
    interceptor = RateLimitInterceptor(LocalRateLimiter(), None, Defaults(10, 20, 30, 40, 5))  # type: ignore[arg-type]
    principal = Principal(7, "key_1", frozenset({"read"}), read_per_minute=3)
    policy = policy_for("/postwire.v1.EmailService/GetStatus")
    assert policy is not None
    first = interceptor.budgets_for(principal, policy)
    assert interceptor.budgets_for(principal, policy) is first
    assert [(name, q.limit) for name, q in first] == [("key:key_1:read", 3), ("account:7:read", 40)]
    changed = dataclasses.replace(principal, read_per_minute=9)  # the key's limit was changed
    assert interceptor.budgets_for(changed, policy)[0][1].limit == 9
