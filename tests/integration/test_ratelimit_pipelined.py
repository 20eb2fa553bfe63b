"""The pipelined Redis connection behind RedisRateLimiter: replies matched to calls in
order, a lost script cache recovered, a silent Redis failing the calls in flight."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import RedisError

from core.limits.interface import Quota
from core.limits.redis_backend import RedisRateLimiter
from core.limits.resp import PipelinedConnection, _parse, command

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    prefix = f"test_pipelined_{secrets.token_hex(4)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS)
    keys = list(client.scan_iter(match=prefix + "*"))
    if keys:
        client.delete(*keys)
    client.close()


def test_parser_waits_for_whole_replies() -> None:
    reply = b"*3\r\n:1\r\n$3\r\nabc\r\n*1\r\n:-2\r\n"
    assert _parse(reply, 0) == ([1, b"abc", [-2]], len(reply))
    for cut in range(1, len(reply)):
        with pytest.raises(Exception) as info:
            _parse(reply[:cut], 0)
        assert type(info.value).__name__ == "_Incomplete"


async def test_concurrent_calls_get_their_own_replies(prefix: str) -> None:
    connection = PipelinedConnection(REDIS)
    try:
        names = [f"{prefix}n{i}" for i in range(200)]
        await asyncio.gather(*(connection.call(command("SET", n, n)) for n in names))
        values = await asyncio.gather(*(connection.call(command("GET", n)) for n in names))
        assert values == [n.encode() for n in names]
    finally:
        await connection.close()


async def test_check_survives_a_flushed_script_cache(prefix: str) -> None:
    limiter = RedisRateLimiter(REDIS, prefix)
    budget = [("b", Quota(5, 60.0))]
    try:
        assert (await limiter.check(budget)).remaining == 4
        redis.Redis.from_url(REDIS).script_flush()  # as after a Redis restart
        assert (await limiter.check(budget)).remaining == 3
        assert not limiter.degraded
    finally:
        await limiter.close()


async def test_silent_redis_fails_calls_in_flight_then_reconnects() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    connection = PipelinedConnection(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    try:
        calls = [asyncio.ensure_future(connection.call(command("PING"))) for _ in range(3)]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 2)
        assert all(isinstance(r, RedisError) for r in results)
    finally:
        await connection.close()
        server.close()


async def test_unix_socket_url_uses_redis_py_and_degrades_when_absent(prefix: str, tmp_path) -> None:
    limiter = RedisRateLimiter(f"unix://{tmp_path}/missing.sock?db=0", prefix, retry_interval=60)
    try:
        decision = await limiter.check([("b", Quota(5, 60.0))])
        assert decision.allowed and limiter.degraded  # answered by the per-process fallback
    finally:
        await limiter.close()
