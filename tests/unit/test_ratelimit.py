"""LocalRateLimiter and LocalStreamSlots against an injected clock."""

from __future__ import annotations

import pytest

from core.limits.interface import Decision, Quota
from core.limits.local import LocalRateLimiter, LocalStreamSlots


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_exact_sliding_window(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock)
    budget = [("key:1:send", Quota(3, 10.0))]
    assert (await limiter.check(budget)).allowed  # t=0
    clock.advance(4)
    assert (await limiter.check(budget)).allowed  # t=4
    assert (await limiter.check(budget)).allowed  # t=4
    clock.advance(5.9)
    assert not (await limiter.check(budget)).allowed  # t=9.9: all three in the window
    clock.advance(0.1)
    assert (await limiter.check(budget)).allowed  # t=10: the t=0 entry left the window
    assert not (await limiter.check(budget)).allowed
    clock.advance(3.9)
    assert not (await limiter.check(budget)).allowed  # t=13.9
    clock.advance(0.1)
    assert (await limiter.check(budget)).allowed  # t=14: one t=4 entry left
    # Denied checks never count: in any 10 s window at most 3 were allowed.


async def test_decision_values(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock)
    budget = [("b", Quota(3, 60.0))]
    first = await limiter.check(budget)
    assert first == Decision(True, 3, 2, 60.0, 0.0, "b")
    clock.advance(10)
    assert await limiter.check(budget) == Decision(True, 3, 1, 60.0, 0.0, "b")
    clock.advance(10)
    assert await limiter.check(budget) == Decision(True, 3, 0, 60.0, 0.0, "b")
    clock.advance(10)
    # t=30: oldest entry (t=0) frees at 60, newest (t=20) at 80.
    denied = await limiter.check(budget)
    assert denied == Decision(False, 3, 0, 50.0, 30.0, "b")
    clock.advance(30)
    assert (await limiter.check(budget)).allowed


async def test_all_or_nothing(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock)
    key = ("key:42:send", Quota(5, 60.0))
    account = ("account:7:send", Quota(2, 60.0))
    assert (await limiter.check([key, account])).allowed
    d = await limiter.check([key, account])
    assert d.allowed and d.budget == "account:7:send" and d.remaining == 0 and d.limit == 2
    denied = await limiter.check([key, account])
    assert not denied.allowed and denied.budget == "account:7:send"
    # The denied request did not consume the key budget: 2 used, this makes 3.
    d = await limiter.check([key])
    assert d.allowed and d.remaining == 2 and d.budget == "key:42:send"


async def test_binding_budget_is_fewest_remaining(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock)
    big, small = ("big", Quota(100, 60.0)), ("small", Quota(10, 1.0))
    d = await limiter.check([big, small])
    assert (d.budget, d.limit, d.remaining, d.reset_after) == ("small", 10, 9, 1.0)


async def test_denied_binding_is_longest_wait(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock)
    short, long = ("short", Quota(1, 5.0)), ("long", Quota(1, 50.0))
    assert (await limiter.check([short, long])).allowed
    clock.advance(1)
    d = await limiter.check([short, long])
    assert not d.allowed and d.budget == "long" and d.retry_after == pytest.approx(49.0)


async def test_cost(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock)
    budget = [("b", Quota(10, 60.0))]
    d = await limiter.check(budget, cost=4)
    assert d.allowed and d.remaining == 6
    clock.advance(10)
    d = await limiter.check(budget, cost=4)
    assert d.allowed and d.remaining == 2
    clock.advance(10)
    d = await limiter.check(budget, cost=3)
    # Needs one more slot: the first batch (t=0) frees at 60.
    assert not d.allowed and d.retry_after == pytest.approx(40.0)
    assert (await limiter.check(budget, cost=2)).allowed
    clock.advance(40)
    assert (await limiter.check(budget, cost=3)).allowed


async def test_cost_above_limit_is_never_allowed(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock)
    d = await limiter.check([("b", Quota(3, 60.0))], cost=4)
    assert d == Decision(False, 3, 0, 0.0, 60.0, "b")


async def test_invalid_arguments(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock)
    with pytest.raises(ValueError):
        await limiter.check([])
    with pytest.raises(ValueError):
        await limiter.check([("b", Quota(1))], cost=0)
    with pytest.raises(ValueError):
        Quota(0)
    with pytest.raises(ValueError):
        Quota(1, 0)


async def test_sweep_forgets_idle_budgets(clock: FakeClock) -> None:
    limiter = LocalRateLimiter(clock)
    await limiter.check([("idle", Quota(1, 1.0))])
    clock.advance(120)
    await limiter.check([("other", Quota(1, 1.0))])
    assert "idle" not in limiter._logs


async def test_stream_slots_limit_and_release(clock: FakeClock) -> None:
    slots = LocalStreamSlots(clock)
    assert await slots.acquire("key:1", 2, "a")
    assert await slots.acquire("key:1", 2, "b")
    assert not await slots.acquire("key:1", 2, "c")
    assert await slots.acquire("key:1", 2, "a")  # re-acquiring a held slot
    assert await slots.acquire("key:2", 2, "c")  # other names are separate
    await slots.release("key:1", "b")
    assert await slots.acquire("key:1", 2, "c")
    await slots.release("key:1", "missing")  # harmless


async def test_stream_slots_expire_unless_refreshed(clock: FakeClock) -> None:
    slots = LocalStreamSlots(clock)
    assert await slots.acquire("k", 2, "a", ttl=30)
    assert await slots.acquire("k", 2, "b", ttl=30)
    clock.advance(20)
    await slots.refresh("k", "a", ttl=30)  # a lives until 50, b until 30
    clock.advance(10)
    assert await slots.acquire("k", 2, "c", ttl=30)  # b expired
    assert not await slots.acquire("k", 2, "d", ttl=30)
    clock.advance(20)
    assert await slots.acquire("k", 2, "d", ttl=30)  # a expired at 50
