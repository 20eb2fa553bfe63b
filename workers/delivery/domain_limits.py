"""Per-destination-domain concurrency, shared by every worker.

One slow receiving domain can then hold at most `domain_concurrency` deliveries;
the rest of the workers keep delivering elsewhere. The slots are the same leased
Redis sorted sets that cap concurrent event streams (core/limits/redis_backend.py): one
script call takes a slot, one ZREM gives it back, and a crashed worker's slots expire
after the lease. While Redis cannot be reached each worker counts its own slots
(logged, and back to Redis by itself), so mail keeps flowing.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from core.limits.interface import StreamSlots
from core.limits.local import LocalStreamSlots
from core.limits.redis_backend import RedisStreamSlots
from core.settings import Settings


class DomainLimiter:
    def __init__(self, settings: Settings) -> None:
        self.limit = settings.domain_concurrency
        self.ttl = settings.lease_seconds
        self.slots: StreamSlots
        if settings.redis_url:
            self.slots = RedisStreamSlots(
                settings.redis_url, f"{settings.queue_prefix}:domain:", fallback=LocalStreamSlots(), what="domain slots"
            )
        else:
            self.slots = LocalStreamSlots()

    @asynccontextmanager
    async def hold(self, domains: Iterable[str]) -> AsyncIterator[bool]:
        """Take a slot for every domain (all or none); yields whether it got them."""
        slot = secrets.token_hex(8)
        held: list[str] = []
        ok = True
        try:
            if self.limit > 0:
                for domain in sorted({d.lower() for d in domains}):
                    if not await self.slots.acquire(domain, self.limit, slot, self.ttl):
                        ok = False
                        break
                    held.append(domain)
            yield ok
        finally:
            for domain in held:
                await self.slots.release(domain, slot)
