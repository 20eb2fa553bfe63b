"""The per-account cache loads a value once for all the callers that miss at the same
time (a SendBatch of 1,000 emails, or a burst of Sends when the entry expires)."""

from __future__ import annotations

import asyncio

import pytest

from core.per_account import PerAccount
from core.times import utcnow


async def test_concurrent_misses_share_one_load() -> None:
    loads: list[int] = []

    async def load(account_id: int) -> str:
        loads.append(account_id)
        await asyncio.sleep(0.01)
        return f"value {account_id}"

    cache = PerAccount(load, ttl=5.0)
    values = await asyncio.gather(*(cache.get(1) for _ in range(500)), cache.get(2))
    assert values == ["value 1"] * 500 + ["value 2"]
    assert sorted(loads) == [1, 2]
    assert await cache.get(1) == "value 1" and len(loads) == 2


async def test_a_caller_asking_for_a_value_newer_than_a_load_in_flight_loads_again() -> None:
    loads = 0
    release = asyncio.Event()

    async def load(account_id: int) -> int:
        nonlocal loads
        loads += 1
        mine = loads
        await release.wait()
        return mine

    cache = PerAccount(load, ttl=5.0)
    first = asyncio.create_task(cache.get(1))
    await asyncio.sleep(0)
    newer = asyncio.create_task(cache.get(1, as_of=utcnow()))
    await asyncio.sleep(0)
    release.set()
    assert await first == 1 and await newer == 2


async def test_a_failed_load_fails_its_waiters_and_the_next_caller_tries_again() -> None:
    attempts = 0

    async def load(account_id: int) -> int:
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(0.01)
        if attempts == 1:
            raise ConnectionError("database down")
        return 7

    cache = PerAccount(load, ttl=5.0)
    results = await asyncio.gather(cache.get(1), cache.get(1), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results) and attempts == 1
    assert await cache.get(1) == 7


async def test_a_cancelled_caller_does_not_cancel_the_load_the_others_wait_for() -> None:
    async def load(account_id: int) -> int:
        await asyncio.sleep(0.02)
        return 3

    cache = PerAccount(load, ttl=5.0)
    impatient = asyncio.create_task(cache.get(1))
    patient = asyncio.create_task(cache.get(1))
    await asyncio.sleep(0.005)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert await patient == 3


async def test_fresh_answers_a_hit_without_loading_and_nothing_once_expired() -> None:
    async def load(account_id: int) -> bool:
        return False  # a falsy value is still a hit

    cache = PerAccount(load, ttl=0.05)
    assert cache.fresh(1) is None
    assert await cache.get(1) is False
    assert cache.fresh(1) == (False,)
    await asyncio.sleep(0.06)
    assert cache.fresh(1) is None
