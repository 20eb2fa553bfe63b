"""The rate limit contract: budgets, quotas, decisions, and the two interfaces.

A request names the budgets it draws on (say `key:42:send` and `account:7:send`), each
with its `Quota`. The check is all-or-nothing: the request counts against every budget
only if every budget allows it, so a request denied by the account budget does not
use up the key budget.

Implementations: `core.limits.local` (per process: the embedded mode, and the fallback
while Redis is unreachable) and `core.limits.redis_backend` (shared by every process).
Both import this module; it imports neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Quota:
    """At most `limit` requests in any window of `period` seconds."""

    limit: int
    period: float = 60.0

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"quota limit must be >= 1, got {self.limit}")
        if not self.period > 0:
            raise ValueError(f"quota period must be > 0, got {self.period}")


@dataclass(frozen=True)
class Decision:
    """The outcome of one check, described in terms of its binding budget.

    Allowed: the budget with the fewest requests remaining. Denied: the denying budget
    that is furthest from allowing the request (the largest `retry_after`).
    """

    allowed: bool
    limit: int
    remaining: int  # left in the binding budget after this request; 0 when denied
    reset_after: float  # seconds until the binding budget is completely full again
    retry_after: float  # seconds until this request would be allowed; 0.0 when allowed
    budget: str


class RateLimiter(Protocol):
    async def check(self, budgets: Sequence[tuple[str, Quota]], cost: int = 1) -> Decision:
        """Count `cost` requests against every budget, or against none if any denies.

        A `cost` above a budget's limit can never be allowed: it is denied with
        `retry_after` equal to that budget's period.
        """
        ...


class StreamSlots(Protocol):
    """A cap on concurrent long-lived streams per name; slots expire after `ttl`."""

    async def acquire(self, name: str, limit: int, slot_id: str, ttl: float = 30.0) -> bool:
        """Take a slot; False when `limit` live slots are taken. Re-acquiring a held
        slot_id refreshes it and returns True."""
        ...

    async def refresh(self, name: str, slot_id: str, ttl: float = 30.0) -> None:
        """Keep a live stream's slot for another `ttl` (records it if it was lost)."""
        ...

    async def release(self, name: str, slot_id: str) -> None: ...


def validate(budgets: Sequence[tuple[str, Quota]], cost: int) -> None:
    if not budgets:
        raise ValueError("a rate limit check needs at least one budget")
    if cost < 1:
        raise ValueError(f"cost must be >= 1, got {cost}")
