"""Rate limits and stream slots shared through Redis, degrading to per-process limits.

Every check is one Lua script (EVALSHA), so checks from any number of processes are
atomic: no read-then-write races. Times come from Redis `TIME`, in milliseconds, never
from the client clock. Rate limit checks, the hot path, go over one pipelined socket
that stays open (core.limits.resp) as bytes prepared once per set of budgets; stream
slots, rare, use redis-py.

When Redis is unreachable or errors, answers come from a local fallback (per-process
budgets, never unlimited). One WARNING on entering degraded mode, one INFO on
recovering. While degraded no request touches Redis: a background task pings it every
`retry_interval` seconds and switches back when it answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import weakref
from collections.abc import Sequence
from itertools import count

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from core.limits.interface import Decision, Quota, validate
from core.limits.local import LocalRateLimiter, LocalStreamSlots
from core.limits.redis_scripts import ACQUIRE, CHECK, REFRESH
from core.limits.resp import PipelinedConnection, bulk, command
from core.observability.metrics import metric

log = logging.getLogger(__name__)

# What counts as "Redis is not answering". redis-py wraps socket errors in its own
# ConnectionError/TimeoutError (RedisError subclasses); the rest is belt and braces.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)

_POOL_SIZE = 64
_CHECK_SHA = hashlib.sha1(CHECK.encode()).hexdigest()
_PREPARED_MAX = 10_000  # prepared budget sets kept (one per key and budget in use)

FALLBACK_TOTAL = metric(
    Counter,
    "postwire_ratelimit_fallback_total",
    "Rate limit checks and stream slot acquisitions answered by the per-process "
    "fallback because Redis was unreachable.",
)
DEGRADED = metric(
    Gauge,
    "postwire_ratelimit_degraded",
    "1 while any rate limiter of this process runs on its per-process fallback.",
)
_degraded_now: weakref.WeakSet[_Failover] = weakref.WeakSet()
DEGRADED.set_function(lambda: 1.0 if len(_degraded_now) else 0.0)

def _client(url: str) -> aioredis.Redis:
    # Short timeouts and no client-side retries: an outage costs a request at most half
    # a second, and a script that adds entries is never sent twice. A burst beyond the
    # pool waits (up to a second) for a connection instead of failing over: a full
    # pool is load, not an outage.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=_POOL_SIZE,
        timeout=1.0,
        socket_timeout=0.5,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis.from_pool(pool)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class _Failover:
    """Whether Redis answers; while it does not, a task pings it every retry_interval."""

    def __init__(self, client: aioredis.Redis, retry_interval: float, what: str) -> None:
        self._client = client
        self._retry_interval = retry_interval
        self._what = what
        self._probe: asyncio.Task[None] | None = None
        self.degraded = False

    def failed(self, exc: BaseException) -> None:
        if self.degraded:
            return
        self.degraded = True
        _degraded_now.add(self)
        log.warning(
            "%s: Redis unavailable (%r); using per-process limits until it answers",
            self._what,
            exc,
        )
        self._probe = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        while True:
            await asyncio.sleep(self._retry_interval)
            try:
                await self._client.ping()
            except REDIS_FAILURES:
                continue
            self.degraded = False
            _degraded_now.discard(self)
            log.info("%s: Redis answers again; shared limits restored", self._what)
            return

    async def close(self) -> None:
        _degraded_now.discard(self)
        if self._probe is not None:
            self._probe.cancel()
            try:
                await self._probe
            except asyncio.CancelledError:
                pass


def _decision(budgets: Sequence[tuple[str, Quota]], reply: Sequence[int]) -> Decision:
    allowed, index, limit, remaining, reset_ms, retry_ms = reply
    return Decision(
        allowed=bool(allowed),
        limit=limit,
        remaining=remaining,
        reset_after=reset_ms / 1000,
        retry_after=retry_ms / 1000,
        budget=budgets[index - 1][0],
    )


class RedisRateLimiter:
    """Sliding-window logs in Redis: one sorted set `{prefix}{budget}` per budget."""

    def __init__(
        self,
        url: str,
        prefix: str,
        fallback: LocalRateLimiter | None = None,
        retry_interval: float = 1.0,
    ) -> None:
        self._prefix = prefix
        self._fallback = fallback if fallback is not None else LocalRateLimiter()
        self._client = _client(url)  # for the recovery probe
        try:
            self._connection: PipelinedConnection | None = PipelinedConnection(url)
        except ValueError:  # unix socket or TLS URL: redis-py's client does the checks
            self._connection = None
        self._script = self._client.register_script(CHECK)
        self._failover = _Failover(self._client, retry_interval, "rate limiter")
        # Entries are named `{token base}{n}:{m}`: unique across processes and calls.
        self._token_base = secrets.token_hex(6).encode()
        self._tokens = count()
        self._prepared: dict[tuple[tuple[tuple[str, Quota], ...], int], tuple[bytes, bytes]] = {}

    @property
    def degraded(self) -> bool:
        return self._failover.degraded

    async def check(self, budgets: Sequence[tuple[str, Quota]], cost: int = 1) -> Decision:
        validate(budgets, cost)
        if not self._failover.degraded:
            try:
                return await self._check(budgets, cost)
            except REDIS_FAILURES as exc:
                self._failover.failed(exc)
        FALLBACK_TOTAL.inc()
        return await self._fallback.check(budgets, cost)

    def _prepare(self, budgets: Sequence[tuple[str, Quota]], cost: int) -> tuple[bytes, bytes]:
        """The EVALSHA command around its one per-call argument (the entry token),
        built once per set of budgets: (everything before the token, everything after)."""
        key = (tuple(budgets), cost)
        prepared = self._prepared.get(key)
        if prepared is None:
            keys = [self._prefix + name for name, _ in budgets]
            parts = ["EVALSHA", _CHECK_SHA, len(budgets), *keys, cost]
            # + the token + a limit and a period per budget
            head = b"*%d\r\n" % (len(parts) + 1 + 2 * len(budgets)) + b"".join(bulk(p) for p in parts)
            tail = b"".join(bulk(v) for _, quota in budgets for v in (quota.limit, _ms(quota.period)))
            if len(self._prepared) >= _PREPARED_MAX:
                self._prepared.clear()
            prepared = self._prepared[key] = (head, tail)
        return prepared

    async def _check(self, budgets: Sequence[tuple[str, Quota]], cost: int) -> Decision:
        token = self._token_base + b"%x" % next(self._tokens)
        if self._connection is None:
            args = [cost, token] + [v for _, q in budgets for v in (q.limit, _ms(q.period))]
            reply = [int(v) for v in await self._script(keys=[self._prefix + n for n, _ in budgets], args=args)]
            return _decision(budgets, reply)
        head, tail = self._prepare(budgets, cost)
        payload = b"%s$%d\r\n%s\r\n%s" % (head, len(token), token, tail)
        try:
            reply = await self._connection.call(payload)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            # Redis restarted or flushed its scripts: EVAL sends the script and caches it.
            args = [self._prefix + name for name, _ in budgets]
            args += [cost, token] + [v for _, q in budgets for v in (q.limit, _ms(q.period))]
            reply = await self._connection.call(command("EVAL", CHECK, len(budgets), *args))
        return _decision(budgets, reply)

    async def close(self) -> None:
        await self._failover.close()
        if self._connection is not None:
            await self._connection.close()
        await self._client.aclose()


class RedisStreamSlots:
    """Stream slots in Redis: one sorted set `{prefix}{name}`, member slot_id, score
    expiry (ms). A crashed server's slots free themselves after their ttl."""

    def __init__(
        self,
        url: str,
        prefix: str,
        fallback: LocalStreamSlots | None = None,
        retry_interval: float = 1.0,
        what: str = "stream slots",
    ) -> None:
        self._prefix = prefix
        self._fallback = fallback if fallback is not None else LocalStreamSlots()
        self._client = _client(url)
        self._acquire = self._client.register_script(ACQUIRE)
        self._refresh = self._client.register_script(REFRESH)
        self._failover = _Failover(self._client, retry_interval, what)

    @property
    def degraded(self) -> bool:
        return self._failover.degraded

    async def acquire(self, name: str, limit: int, slot_id: str, ttl: float = 30.0) -> bool:
        if not self._failover.degraded:
            try:
                keys, args = [self._prefix + name], [slot_id, _ms(ttl), limit]
                return bool(await self._acquire(keys=keys, args=args))
            except REDIS_FAILURES as exc:
                self._failover.failed(exc)
        FALLBACK_TOTAL.inc()
        return await self._fallback.acquire(name, limit, slot_id, ttl)

    async def refresh(self, name: str, slot_id: str, ttl: float = 30.0) -> None:
        if not self._failover.degraded:
            try:
                await self._refresh(keys=[self._prefix + name], args=[slot_id, _ms(ttl)])
                return
            except REDIS_FAILURES as exc:
                self._failover.failed(exc)
        await self._fallback.refresh(name, slot_id, ttl)

    async def release(self, name: str, slot_id: str) -> None:
        # Released in both places: the slot may have been taken on either side.
        await self._fallback.release(name, slot_id)
        if not self._failover.degraded:
            try:
                await self._client.zrem(self._prefix + name, slot_id)
            except REDIS_FAILURES as exc:
                self._failover.failed(exc)

    async def close(self) -> None:
        await self._failover.close()
        await self._client.aclose()

