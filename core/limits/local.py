"""Per-process rate limits: exact sliding-window logs over named budgets (see
core.limits.interface), and caps on live streams. The embedded mode uses them, and the
Redis implementations fall back on them when Redis is unreachable."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.limits.interface import Decision, Quota, validate

# How often the local implementations drop state of names nobody has asked about since
# their entries expired (names are otherwise cleaned when they are next checked).
_SWEEP_INTERVAL = 60.0


@dataclass
class _Log:
    period: float
    times: deque[float]

    def trim(self, now: float) -> None:
        times = self.times
        while times and times[0] + self.period <= now:
            times.popleft()


class LocalRateLimiter:
    """Per-process sliding-window logs. Not shared between processes."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, _Log] = {}
        self._next_sweep = -math.inf

    async def check(self, budgets: Sequence[tuple[str, Quota]], cost: int = 1) -> Decision:
        # No await inside: atomic with respect to other tasks on the loop.
        validate(budgets, cost)
        now = self._clock()
        self._sweep(now)
        logs: list[_Log] = []
        for name, quota in budgets:
            log = self._logs.get(name)
            if log is None:
                log = _Log(quota.period, deque())
            log.period = quota.period
            log.trim(now)
            logs.append(log)

        denied: Decision | None = None
        for (name, quota), log in zip(budgets, logs):
            count = len(log.times)
            if count + cost <= quota.limit:
                continue
            # The request fits once the (count + cost - limit)-th oldest entry expires.
            k = count + cost - quota.limit - 1
            retry = log.times[k] + quota.period - now if k < count else quota.period
            if denied is None or retry > denied.retry_after:
                reset = log.times[-1] + quota.period - now if count else 0.0
                denied = Decision(False, quota.limit, 0, reset, retry, name)
        if denied is not None:
            return denied

        binding: Decision | None = None
        for (name, quota), log in zip(budgets, logs):
            log.times.extend([now] * cost)
            self._logs[name] = log
            remaining = quota.limit - len(log.times)
            if binding is None or remaining < binding.remaining:
                binding = Decision(True, quota.limit, remaining, quota.period, 0.0, name)
        assert binding is not None
        return binding

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        for name, log in list(self._logs.items()):
            log.trim(now)
            if not log.times:
                del self._logs[name]


class LocalStreamSlots:
    """Per-process stream slots: name -> {slot_id: expiry}."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._slots: dict[str, dict[str, float]] = {}
        self._next_sweep = -math.inf

    async def acquire(self, name: str, limit: int, slot_id: str, ttl: float = 30.0) -> bool:
        now = self._clock()
        self._sweep(now)
        slots = self._live(name, now)
        if slot_id not in slots and len(slots) >= limit:
            return False
        slots[slot_id] = now + ttl
        self._slots[name] = slots
        return True

    async def refresh(self, name: str, slot_id: str, ttl: float = 30.0) -> None:
        now = self._clock()
        slots = self._live(name, now)
        slots[slot_id] = now + ttl
        self._slots[name] = slots

    async def release(self, name: str, slot_id: str) -> None:
        slots = self._slots.get(name)
        if slots is not None:
            slots.pop(slot_id, None)
            if not slots:
                del self._slots[name]

    def _live(self, name: str, now: float) -> dict[str, float]:
        slots = self._slots.get(name, {})
        for slot_id, expiry in list(slots.items()):
            if expiry <= now:
                del slots[slot_id]
        return slots

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        for name in list(self._slots):
            if not self._live(name, now):
                del self._slots[name]
