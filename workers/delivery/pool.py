"""Pools of open SMTP connections to one server, for one event loop.

A connection is set up once (connect, EHLO, STARTTLS, EHLO, AUTH) and reused for
several transactions: RSET before each reuse, QUIT after `max_messages`, dropped when
idle longer than `idle_timeout`, and closed for good after any error on it.
`ConnectionPool` does the pooling; a subclass says how a connection is opened:
`RelayPool` here for a configured relay, `workers.delivery.mx.MxPool` for an MX host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from dataclasses import dataclass, field

import aiosmtplib

from core.settings import RelaySettings

log = logging.getLogger(__name__)

# A pooled connection whose last transaction ended this recently is reused without
# the RSET round trip that otherwise proves it is still alive: the relay has just
# answered 250 on it, and a new transaction may follow a completed one (RFC 5321 4.1.4).
FRESH_SECONDS = 1.0

TLS_MODES = ("none", "starttls", "implicit")


@dataclass(eq=False)
class Connection:
    """One open, authenticated SMTP session and how much it has been used."""

    client: aiosmtplib.SMTP
    messages: int = 0
    last_used: float = field(default_factory=time.monotonic)


class ConnectionPool:
    """At most `size` connections (and concurrent transactions) to one server.
    Subclasses implement `_open`."""

    def __init__(self, name: str, *, size: int, max_messages: int, idle_timeout: float) -> None:
        if size < 1 or max_messages < 1:
            raise ValueError("pool size and max messages per connection must be at least 1")
        self.name = name
        self.max_messages = max_messages
        self.idle_timeout = idle_timeout
        self.connections_opened = 0
        self.users = 0  # acquired, or waiting for a slot
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Connection] = []
        self._closed = False

    async def acquire(self) -> Connection:
        """A ready connection (reused, after a successful RSET unless it finished a
        transaction less than FRESH_SECONDS ago; or new); holds a slot
        until `release`. Raises connect, TLS, EHLO and AUTH errors."""
        self.users += 1
        try:
            await self._slots.acquire()
        except BaseException:
            self.users -= 1
            raise
        try:
            conn = await self._reuse()
            if conn is None:
                conn = await self._open()
                self.connections_opened += 1
        except BaseException:
            self.users -= 1
            self._slots.release()
            raise
        return conn

    async def release(self, conn: Connection, *, reusable: bool) -> None:
        """Give a connection back: pooled after a clean transaction, closed otherwise."""
        self.users -= 1
        try:
            conn.messages += 1
            conn.last_used = time.monotonic()
            if not reusable or not conn.client.is_connected:
                conn.client.close()  # state unknown after an error: never reuse
            elif self._closed or conn.messages >= self.max_messages:
                await _quit(conn)
            else:
                self._idle.append(conn)
        finally:
            self._slots.release()

    async def close(self) -> None:
        """QUIT the idle connections; those in use are closed when released."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(c) for c in idle))

    async def _reuse(self) -> Connection | None:
        while self._idle:
            conn = self._idle.pop()  # the most recently used is the likeliest alive
            if time.monotonic() - conn.last_used > self.idle_timeout:
                await _quit(conn)
                continue
            if not conn.client.is_connected:
                conn.client.close()
                continue
            if time.monotonic() - conn.last_used < FRESH_SECONDS:
                return conn  # its last transaction just ended with 250: the session is ready
            try:
                await conn.client.rset()
            except (aiosmtplib.SMTPException, OSError) as exc:
                log.info("smtp relay=%s pooled connection dropped on RSET: %s", self.name, type(exc).__name__)
                conn.client.close()
                continue
            return conn
        return None

    async def prune(self) -> None:
        """QUIT the idle connections unused for longer than `idle_timeout`."""
        now = time.monotonic()
        stale = [c for c in self._idle if now - c.last_used > self.idle_timeout or not c.client.is_connected]
        self._idle = [c for c in self._idle if c not in stale]
        await asyncio.gather(*(_quit(c) for c in stale))

    @property
    def empty(self) -> bool:
        """No connection open, none in use or awaited."""
        return not self._idle and not self.users

    async def _open(self) -> Connection:
        """A new connection, set up and ready for MAIL; raises what setting it up raised."""
        raise NotImplementedError


class RelayPool(ConnectionPool):
    """The connections to one configured relay (TLS per its `tls` mode, AUTH when set)."""

    def __init__(self, relay: RelaySettings, *, size: int, max_messages: int, idle_timeout: float) -> None:
        if relay.tls not in TLS_MODES:
            raise ValueError(f"relay {relay.name}: tls must be one of {', '.join(TLS_MODES)}")
        super().__init__(relay.name, size=size, max_messages=max_messages, idle_timeout=idle_timeout)
        self.relay = relay
        self._tls_context: ssl.SSLContext | None = None
        if relay.tls != "none":
            self._tls_context = ssl.create_default_context(cafile=relay.ca_file or None)

    async def _open(self) -> Connection:
        relay = self.relay
        client = aiosmtplib.SMTP(
            hostname=relay.host,
            port=relay.port,
            timeout=relay.timeout,
            use_tls=relay.tls == "implicit",
            start_tls=False,  # done below, explicitly, so 'none' never upgrades
            tls_context=self._tls_context,
        )
        try:
            await client.connect()
            await client.ehlo()
            if relay.tls == "starttls":
                await client.starttls()
                await client.ehlo()
            if relay.username:
                await client.login(relay.username, relay.password.get_secret_value())
        except BaseException:
            client.close()
            raise
        log.debug("smtp relay=%s connection opened (tls=%s)", self.name, relay.tls)
        return Connection(client)


async def _quit(conn: Connection) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await conn.client.quit()
    conn.client.close()
