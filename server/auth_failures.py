"""Failed authentications per client address, shared by every listener that takes an
API key (the gRPC AuthInterceptor, the SMTP submission AUTH).

Each failure counts against `authfail:{address}` on the rate limiter (shared through
Redis when there is one). Past the budget the address is blocked in this process until
the budget allows again: its keys are not looked up meanwhile.
"""

from __future__ import annotations

import time

from core.limits.interface import Quota, RateLimiter

_FORGET_AT = 10_000  # blocked addresses kept before the expired ones are dropped


class FailedLogins:
    def __init__(self, limiter: RateLimiter, per_minute: int) -> None:
        self.limiter = limiter
        self.quota = Quota(max(1, per_minute), 60.0)
        self._blocked_until: dict[str, float] = {}

    def blocked_for(self, address: str) -> float:
        """Seconds this address stays blocked; 0.0 when it is not."""
        until = self._blocked_until.get(address)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            del self._blocked_until[address]
            return 0.0
        return left

    async def failed(self, address: str) -> float:
        """Count one failure; the seconds the address is now blocked (0.0: not blocked)."""
        decision = await self.limiter.check(((f"authfail:{address}", self.quota),))
        if decision.allowed:
            return 0.0
        if len(self._blocked_until) >= _FORGET_AT:
            now = time.monotonic()
            self._blocked_until = {a: t for a, t in self._blocked_until.items() if t > now}
        self._blocked_until[address] = time.monotonic() + decision.retry_after
        return decision.retry_after
