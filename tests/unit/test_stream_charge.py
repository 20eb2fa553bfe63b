"""A SendStream's messages are charged to the send budgets group by group: a group over
the budget waits for it (the stream slows down, never fails), and a group larger than
the smallest limit is charged in parts, since a larger cost could never be allowed."""

from __future__ import annotations

import time

from core.limits.interface import Quota
from core.limits.local import LocalRateLimiter
from server.ratelimit import _charger


async def test_a_group_over_the_budget_waits_for_it_in_parts_of_the_smallest_limit() -> None:
    limiter = LocalRateLimiter()
    budgets = (("key:1:send", Quota(5, period=0.3)), ("account:1:send", Quota(50, period=0.3)))
    charge = _charger(limiter, budgets)
    started = time.monotonic()
    await charge(12)  # 5 now, 5 once the window has passed, then 2
    elapsed = time.monotonic() - started
    assert 0.55 <= elapsed < 3.0, elapsed
    assert not (await limiter.check(budgets, 4)).allowed  # the last 2 are still in the window


async def test_a_group_within_the_budget_is_charged_at_once() -> None:
    limiter = LocalRateLimiter()
    budgets = (("key:2:send", Quota(100, period=60)),)
    started = time.monotonic()
    await _charger(limiter, budgets)(40)
    assert time.monotonic() - started < 0.1
    assert (await limiter.check(budgets, 60)).allowed and not (await limiter.check(budgets, 1)).allowed
