"""A short in-process cache of one value per account (`ttl` seconds), for reads on the
hot path of every Send or delivery: verified domains, DKIM keys, account settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Generic, TypeVar

from core.times import utcnow

T = TypeVar("T")


class PerAccount(Generic[T]):
    """Callers that miss at the same time share one load (a SendBatch's emails, or a
    burst of Sends when an entry expires), unless they need a newer value than the
    load in flight started with."""

    def __init__(self, load: Callable[[int], Awaitable[T]], ttl: float) -> None:
        self.load = load
        self.ttl = ttl
        self._entries: dict[int, tuple[float, datetime, T]] = {}  # expiry (monotonic), loaded at, value
        self._loading: dict[int, tuple[datetime, asyncio.Task[T]]] = {}  # started at, the load

    def fresh(self, account_id: int) -> tuple[T] | None:
        """(value,) when a cached value has not expired, else None: the hit path without
        a coroutine, for callers that check every email of a batch."""
        entry = self._entries.get(account_id)
        return (entry[2],) if entry is not None and entry[0] > time.monotonic() else None

    async def get(self, account_id: int, *, as_of: datetime | None = None) -> T:
        """The cached value, unless it expired or was read before `as_of`."""
        entry = self._entries.get(account_id)
        if entry is not None and entry[0] > time.monotonic() and (as_of is None or entry[1] >= as_of):
            return entry[2]
        loading = self._loading.get(account_id)
        if loading is None or (as_of is not None and loading[0] < as_of):
            loading = (utcnow(), asyncio.ensure_future(self._load(account_id)))
            self._loading[account_id] = loading
            loading[1].add_done_callback(lambda task: self._done(account_id, task))
        return await asyncio.shield(loading[1])  # one caller's cancellation leaves the load to the others

    async def _load(self, account_id: int) -> T:
        now, loaded_at = time.monotonic(), utcnow()
        value = await self.load(account_id)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[account_id] = (now + self.ttl, loaded_at, value)
        return value

    def _done(self, account_id: int, task: asyncio.Task[T]) -> None:
        if self._loading.get(account_id, (None, None))[1] is task:
            del self._loading[account_id]
        if not task.cancelled():
            task.exception()  # retrieved: a failure is the waiters' to report

    def forget(self, account_id: int) -> None:
        self._entries.pop(account_id, None)
