"""Per-destination-domain concurrency, shared by every worker (Dramatiq's
ConcurrentRateLimiter on Redis; its stub backend in the embedded mode).

One slow receiving domain can then hold at most `domain_concurrency` deliveries;
the rest of the workers keep delivering elsewhere. If Redis cannot be reached the
limit is skipped (logged): mail keeps flowing rather than stopping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractContextManager, asynccontextmanager
from typing import Any

import redis
from dramatiq.rate_limits import ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend, StubBackend

from core.settings import Settings

log = logging.getLogger(__name__)


class DomainLimiter:
    def __init__(self, settings: Settings) -> None:
        self.limit = settings.domain_concurrency
        self.prefix = f"{settings.queue_prefix}:domain:"
        self.ttl_ms = int(settings.lease_seconds * 1000)
        if not settings.redis_url:
            self.backend: Any = StubBackend()
        else:
            client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
            self.backend = RedisBackend(client=client)

    def _limiter(self, domain: str) -> ConcurrentRateLimiter:
        return ConcurrentRateLimiter(self.backend, self.prefix + domain, limit=self.limit, ttl=self.ttl_ms)

    @asynccontextmanager
    async def hold(self, domains: Iterable[str]) -> AsyncIterator[bool]:
        """Take a slot for every domain (all or none); yields whether it got them."""
        held: list[AbstractContextManager[bool]] = []
        ok = True
        try:
            if self.limit > 0:
                for domain in sorted({d.lower() for d in domains}):
                    slot = self._limiter(domain).acquire(raise_on_failure=False)
                    try:
                        got = await asyncio.to_thread(slot.__enter__)
                    except redis.RedisError:
                        log.warning("domain limiter unavailable (Redis); delivering without it")
                        continue
                    held.append(slot)
                    if not got:
                        ok = False
                        break
            yield ok
        finally:
            for slot in reversed(held):
                try:
                    await asyncio.to_thread(slot.__exit__, None, None, None)
                except redis.RedisError:
                    log.warning("could not release a domain slot; it expires by itself")
