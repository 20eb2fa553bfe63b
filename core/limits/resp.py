"""One pipelined Redis connection for the rate limit hot path (core.limits.redis_backend).

redis-py's asyncio client costs ~300 µs of CPU per EVALSHA (pool checkout under a
Condition, per-command argument encoding, the RESP3 parser, retry and event hooks).
This connection does only what the limiter needs: commands arrive as ready-made RESP
bytes, are written at once on one socket that stays open (Redis answers in order, so
any number of calls share it), and replies are parsed in `data_received` and handed to
the waiting calls first in, first out.

Failures are redis-py's exception types, so callers treat both clients alike: a call
that gets no answer within `timeout` seconds fails every call in flight on this socket
and closes it (a reply that came later would be matched to the wrong call); the next
call opens a new one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError


def command(*parts: bytes | str | int) -> bytes:
    """One command in RESP (an array of bulk strings)."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        out.append(bulk(part))
    return b"".join(out)


def bulk(part: bytes | str | int) -> bytes:
    data = part if isinstance(part, bytes) else str(part).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


class _Incomplete(Exception):
    pass


def _parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """One reply from buf[pos:]: (value, end); _Incomplete if it has not all arrived."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line = buf[pos:pos + 1], buf[pos + 1:end]
    pos = end + 2
    if kind == b":":
        return int(line), pos
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return buf[pos:pos + size], pos + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = _parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == b"+":
        return line, pos
    if kind == b"-":
        return ResponseError(line.decode(errors="replace")), pos
    raise RedisConnectionError(f"unexpected reply from Redis: {buf[pos - 2 - len(line) - 1:end]!r}")


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: PipelinedConnection) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data if self.buffer else data
        pos, waiting = 0, self.owner._waiting
        try:
            while pos < len(buf):
                value, pos = _parse(buf, pos)
                if not waiting:
                    raise RedisConnectionError("a reply from Redis that nobody asked for")
                future, timer = waiting.popleft()
                timer.cancel()
                if not future.done():
                    future.set_result(value)
        except _Incomplete:
            pass
        except RedisConnectionError as exc:
            self.owner._fail(self, exc)
            return
        self.buffer = buf[pos:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._fail(self, RedisConnectionError(f"connection to Redis lost: {exc!r}"))


class PipelinedConnection:
    """One socket to Redis shared by every call on this event loop."""

    def __init__(self, url: str, timeout: float = 0.5, connect_timeout: float = 0.5) -> None:
        options = parse_url(url)
        if "path" in options or options.get("connection_class") is not None:
            raise ValueError("a pipelined connection needs redis://host:port")
        self._host, self._port = options.get("host", "localhost"), int(options.get("port", 6379))
        self._setup: list[bytes] = []
        if options.get("password"):
            user = options.get("username")
            self._setup.append(command("AUTH", user, options["password"]) if user else command("AUTH", options["password"]))
        if options.get("db"):
            self._setup.append(command("SELECT", options["db"]))
        self._timeout, self._connect_timeout = timeout, connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._waiting: deque[tuple[asyncio.Future[Any], asyncio.TimerHandle]] = deque()

    async def call(self, payload: bytes) -> Any:
        """The reply to one RESP command (a ResponseError is raised, not returned)."""
        protocol = self._protocol
        if protocol is None:
            protocol = await self._connect()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        timer = loop.call_later(self._timeout, self._timed_out, protocol, future)
        self._waiting.append((future, timer))
        protocol.transport.write(payload)  # type: ignore[union-attr]
        reply = await future
        if isinstance(reply, ResponseError):
            raise reply
        return reply

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(lambda: _Protocol(self), self._host, self._port), self._connect_timeout
            )
        except asyncio.TimeoutError as exc:
            raise RedisTimeoutError(f"connecting to Redis at {self._host}:{self._port} timed out") from exc
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis at {self._host}:{self._port}: {exc}") from exc
        self._protocol = protocol
        for setup in self._setup:
            await self.call(setup)
        return protocol

    def _timed_out(self, protocol: _Protocol, future: asyncio.Future[Any]) -> None:
        if not future.done():
            self._fail(protocol, RedisTimeoutError(f"Redis did not answer within {self._timeout}s"))

    def _fail(self, protocol: _Protocol, exc: Exception) -> None:
        if protocol is not self._protocol:
            return
        self._protocol = None
        if protocol.transport is not None:
            protocol.transport.abort()
        waiting, self._waiting = self._waiting, deque()
        for future, timer in waiting:
            timer.cancel()
            if not future.done():
                future.set_exception(exc)

    async def close(self) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
        if self._protocol is not None:
            self._fail(self._protocol, RedisConnectionError("connection closed"))
