"""A short in-process cache of one value per account (`ttl` seconds), for reads on the
hot path of every Send or delivery: verified domains, DKIM keys, account settings."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Generic, TypeVar

from core.times import utcnow

T = TypeVar("T")


class PerAccount(Generic[T]):
    def __init__(self, load: Callable[[int], Awaitable[T]], ttl: float) -> None:
        self.load = load
        self.ttl = ttl
        self._entries: dict[int, tuple[float, datetime, T]] = {}  # expiry (monotonic), loaded at, value

    async def get(self, account_id: int, *, as_of: datetime | None = None) -> T:
        """The cached value, unless it expired or was read before `as_of`."""
        now = time.monotonic()
        entry = self._entries.get(account_id)
        if entry is not None and entry[0] > now and (as_of is None or entry[1] >= as_of):
            return entry[2]
        loaded_at = utcnow()
        value = await self.load(account_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[account_id] = (now + self.ttl, loaded_at, value)
        return value

    def forget(self, account_id: int) -> None:
        self._entries.pop(account_id, None)
