"""RedisRateLimiter and RedisStreamSlots against the real Redis, and through outages."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY

from core.limits.interface import Quota
from core.limits.redis_backend import RedisRateLimiter, RedisStreamSlots
from tests.support.ports import free_port
from tests.support.proxy import Proxy

REDIS_PORT = 6379
REDIS = f"redis://127.0.0.1:{REDIS_PORT}/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"test_ratelimit_{secrets.token_hex(4)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def sync_redis() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS)
    yield client
    client.close()


@pytest.fixture
async def limiter(prefix: str) -> AsyncIterator[RedisRateLimiter]:
    limiter = RedisRateLimiter(REDIS, prefix)
    yield limiter
    await limiter.close()


def fallback_count() -> float:
    return REGISTRY.get_sample_value("postwire_ratelimit_fallback_total") or 0.0


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    proxy = Proxy(REDIS_PORT)
    proxy.up()
    yield proxy
    proxy.down()


# -- exactness across processes ---------------------------------------------------


def _hammer(prefix: str, checks: int, barrier: Any, results: Any) -> None:
    async def run() -> int:
        limiter = RedisRateLimiter(REDIS, prefix)
        await limiter._client.ping()  # connected before the race starts
        barrier.wait()
        budget = [("shared", Quota(100, 60.0))]
        decisions = await asyncio.gather(*(limiter.check(budget) for _ in range(checks)))
        degraded = limiter.degraded
        await limiter.close()
        return -1 if degraded else sum(d.allowed for d in decisions)

    try:
        results.put(asyncio.run(run()))
    except BaseException:
        results.put(-2)
        raise


def test_exact_under_concurrency_across_processes(prefix: str, sync_redis: redis.Redis) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_hammer, args=(prefix, 125, barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    allowed = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    assert min(allowed) >= 0, "a worker failed or fell back to local limits"
    assert sum(allowed) == 100
    assert sync_redis.zcard(prefix + "shared") == 100


# -- semantics ------------------------------------------------------------------------


async def test_all_or_nothing(
    limiter: RedisRateLimiter, prefix: str, sync_redis: redis.Redis
) -> None:
    key = ("key:42:send", Quota(5, 60.0))
    account = ("account:7:send", Quota(2, 60.0))
    assert (await limiter.check([key, account])).allowed
    d = await limiter.check([key, account])
    assert (d.allowed, d.budget, d.limit, d.remaining) == (True, "account:7:send", 2, 0)
    denied = await limiter.check([key, account])
    assert not denied.allowed and denied.budget == "account:7:send"
    assert sync_redis.zcard(prefix + "key:42:send") == 2  # the denial consumed nothing
    d = await limiter.check([key])
    assert (d.allowed, d.budget, d.remaining) == (True, "key:42:send", 2)


async def test_decision_values_and_window(
    limiter: RedisRateLimiter, prefix: str, sync_redis: redis.Redis
) -> None:
    budget = [("b", Quota(3, 1.0))]
    remaining = [(await limiter.check(budget)).remaining for _ in range(3)]
    assert remaining == [2, 1, 0]
    d = await limiter.check(budget)
    assert (d.allowed, d.limit, d.remaining, d.budget) == (False, 3, 0, "b")
    assert 0 < d.retry_after <= 1.0 and 0 < d.reset_after <= 1.0
    assert d.retry_after <= d.reset_after
    assert 0 < sync_redis.pttl(prefix + "b") <= 1000
    await asyncio.sleep(d.retry_after + 0.01)
    d = await limiter.check(budget)
    assert d.allowed and d.retry_after == 0.0 and d.reset_after == 1.0


async def test_cost(limiter: RedisRateLimiter, prefix: str, sync_redis: redis.Redis) -> None:
    budget = [("b", Quota(10, 60.0))]
    assert (await limiter.check(budget, cost=4)).remaining == 6
    assert (await limiter.check(budget, cost=4)).remaining == 2
    d = await limiter.check(budget, cost=3)
    assert not d.allowed and 59 < d.retry_after <= 60
    assert (await limiter.check(budget, cost=2)).allowed
    assert sync_redis.zcard(prefix + "b") == 10
    d = await limiter.check([("big", Quota(3, 60.0))], cost=4)
    assert (d.allowed, d.retry_after) == (False, 60.0)
    # Large costs go through the script in chunks.
    assert (await limiter.check([("huge", Quota(5000, 60.0))], cost=2500)).remaining == 2500


# -- fallback and recovery ------------------------------------------------------------


async def test_fallback_when_redis_unreachable(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.limits.redis_backend")
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", prefix, retry_interval=60)
    before = fallback_count()
    try:
        started = time.monotonic()
        decisions = [await limiter.check([("b", Quota(3, 60.0))]) for _ in range(5)]
        assert time.monotonic() - started < 1.0
        assert [d.allowed for d in decisions] == [True, True, True, False, False]
        assert limiter.degraded
        assert fallback_count() - before == 5
        assert REGISTRY.get_sample_value("postwire_ratelimit_degraded") == 1.0
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
    finally:
        await limiter.close()
    assert REGISTRY.get_sample_value("postwire_ratelimit_degraded") == 0.0


async def test_recovery_through_proxy(
    proxy: Proxy, prefix: str, sync_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core.limits.redis_backend")
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{proxy.port}/0", prefix, retry_interval=0.2)
    budget = [("b", Quota(3, 60.0))]
    try:
        assert (await limiter.check(budget)).allowed
        assert not limiter.degraded
        assert sync_redis.zcard(prefix + "b") == 1

        proxy.down()
        before = fallback_count()
        allowed = [(await limiter.check(budget)).allowed for _ in range(5)]
        assert allowed == [True, True, True, False, False]  # still limited, per process
        assert limiter.degraded
        assert fallback_count() - before == 5
        assert sync_redis.zcard(prefix + "b") == 1

        await asyncio.sleep(0.5)
        assert limiter.degraded  # still down: probes failed quietly

        proxy.up()
        deadline = time.monotonic() + 2.0
        while limiter.degraded and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not limiter.degraded
        d = await limiter.check(budget)
        assert d.allowed and d.remaining == 1  # Redis again: its one entry plus this one
        assert sync_redis.zcard(prefix + "b") == 2

        levels = [r.levelno for r in caplog.records]
        assert levels.count(logging.WARNING) == 1 and levels.count(logging.INFO) == 1
    finally:
        await limiter.close()


# -- stream slots ----------------------------------------------------------------------


async def test_stream_slots_shared_between_instances(prefix: str, sync_redis: redis.Redis) -> None:
    a, b = RedisStreamSlots(REDIS, prefix), RedisStreamSlots(REDIS, prefix)
    try:
        assert await a.acquire("key:1", 2, "s1")
        assert await b.acquire("key:1", 2, "s2")
        assert not await a.acquire("key:1", 2, "s3")
        assert not await b.acquire("key:1", 2, "s3")
        assert await a.acquire("key:1", 2, "s1")  # re-acquire a held slot
        await b.release("key:1", "s2")
        assert await a.acquire("key:1", 2, "s3")
        assert 0 < sync_redis.pttl(prefix + "key:1") <= 30_000
    finally:
        await a.close()
        await b.close()


async def test_stream_slots_expire_unless_refreshed(prefix: str) -> None:
    a, b = RedisStreamSlots(REDIS, prefix), RedisStreamSlots(REDIS, prefix)
    try:
        assert await a.acquire("k", 2, "live", ttl=0.3)
        assert await b.acquire("k", 2, "crashed", ttl=0.3)
        await asyncio.sleep(0.2)
        await a.refresh("k", "live", ttl=0.5)
        assert not await b.acquire("k", 2, "new", ttl=0.3)
        await asyncio.sleep(0.15)  # "crashed" expired, "live" holds
        assert await b.acquire("k", 2, "new", ttl=0.3)
        assert not await b.acquire("k", 2, "another", ttl=0.3)
    finally:
        await a.close()
        await b.close()


async def test_stream_slots_fallback_and_recovery(proxy: Proxy, prefix: str) -> None:
    slots = RedisStreamSlots(f"redis://127.0.0.1:{proxy.port}/0", prefix, retry_interval=0.2)
    before = fallback_count()
    try:
        assert await slots.acquire("k", 1, "a")
        proxy.down()
        assert await slots.acquire("k", 1, "b")  # fallback: a per-process count
        assert slots.degraded
        assert not await slots.acquire("k", 1, "c")
        await slots.release("k", "b")
        assert await slots.acquire("k", 1, "c")
        assert fallback_count() - before == 3
        proxy.up()
        deadline = time.monotonic() + 2.0
        while slots.degraded and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not slots.degraded
        assert not await slots.acquire("k", 1, "d")  # Redis still holds "a"
        await slots.release("k", "a")
        assert await slots.acquire("k", 1, "d")
    finally:
        await slots.close()
