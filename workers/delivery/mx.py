"""MX transport: delivers straight to each recipient domain's mail hosts (RFC 5321 §5.1).

Recipients are grouped by domain; each group is one SMTP transaction, and the groups
of a message run concurrently. For a group: the domain's mail hosts in order
(`core.domains.resolver`), each host's addresses in turn. Moving to the next address or
host: it cannot be reached or set up (connect, greeting, EHLO, TLS, timeouts,
disconnects, 421), it lacks SMTPUTF8 when the message needs it, or it answers MAIL/DATA
with 4xx (the relay transport's rule, `smtp._try_next_relay`). A 5xx to MAIL or DATA is
about the message: the group's outcome at once. RCPT refusals are per recipient, in the
result. A DNS error is the group's outcome; none of it raises.

TLS is opportunistic: STARTTLS when the host offers it (and `mx_starttls`), the
certificate not verified, as receivers expect. When STARTTLS fails (refused, handshake
error), the same address is tried again at once in plain text, and that address is
not offered STARTTLS again for PLAIN_AFTER_TLS_FAILURE seconds (what MTAs do; without
it a broken TLS set-up would make the domain undeliverable).

Connections are pooled per (MX host, address, port), at most `mx_connections_per_host`
each (`workers.delivery.pool`); pools left empty are dropped now and then.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

import aiosmtplib
from aiosmtplib import SMTPStatus

from core.domains.resolver import DnsError, Resolver, TemporaryDnsError
from core.settings import Settings
from workers.delivery.pool import Connection, ConnectionPool
from workers.delivery.smtp import (
    GroupOutcome,
    SmtpUtf8Unsupported,
    TransactionResult,
    _describe,
    _try_next_relay,
    pooled_transaction,
)

log = logging.getLogger(__name__)

# After STARTTLS failed on an address, plain text only to it for this long.
PLAIN_AFTER_TLS_FAILURE = 3600.0
# Seconds between sweeps of the pools: idle connections closed, empty pools dropped.
PRUNE_INTERVAL = 30.0

SmtpFailure = (aiosmtplib.SMTPException, OSError, TimeoutError)


def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _StartTlsFailed(Exception):
    """STARTTLS (or the EHLO after it) failed; the session is unusable."""


class MxPool(ConnectionPool):
    """The connections to one address of one MX host."""

    def __init__(self, host: str, address: str, settings: Settings, ehlo_name: str, tls: ssl.SSLContext) -> None:
        super().__init__(
            host if address == host else f"{host}[{address}]:{settings.mx_port}",
            size=settings.mx_connections_per_host,
            max_messages=settings.smtp_max_messages_per_connection,
            idle_timeout=settings.smtp_idle_timeout,
        )
        self.host = host
        self.address = address
        self.port = settings.mx_port
        self.timeout = settings.mx_timeout
        self.starttls = settings.mx_starttls
        self.ehlo_name = ehlo_name
        self._tls_context = tls
        self._plain_until = 0.0

    async def _open(self) -> Connection:
        if self.starttls and time.monotonic() >= self._plain_until:
            try:
                return await self._connect(tls=True)
            except _StartTlsFailed as exc:
                log.warning("smtp mx=%s STARTTLS failed, retrying in plain text: %s", self.name, exc)
                self._plain_until = time.monotonic() + PLAIN_AFTER_TLS_FAILURE
        return await self._connect(tls=False)

    async def _connect(self, *, tls: bool) -> Connection:
        client = aiosmtplib.SMTP(
            hostname=self.address,
            port=self.port,
            timeout=self.timeout,
            local_hostname=self.ehlo_name,
            use_tls=False,
            start_tls=False,  # done below, only when offered
        )
        try:
            await client.connect()
            await _hello(client)
            if tls and client.supports_extension("starttls"):
                try:
                    await client.starttls(server_hostname=self.host, tls_context=self._tls_context)
                    await _hello(client)
                except SmtpFailure as exc:
                    raise _StartTlsFailed(_describe(exc)) from exc
        except BaseException:
            client.close()
            raise
        return Connection(client)


async def _hello(client: aiosmtplib.SMTP) -> None:
    """EHLO, or HELO for a server that does not know EHLO (RFC 5321 §3.2)."""
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError as exc:
        if exc.code < 500 or exc.code == SMTPStatus.domain_unavailable:
            raise
        await client.helo()


class MxTransport:
    """Direct-to-MX delivery; one per worker process, used from one event loop."""

    def __init__(self, settings: Settings, resolver: Resolver) -> None:
        self.settings = settings
        self.resolver = resolver
        self.ehlo_name = settings.sending_hostname()
        self.pools: dict[tuple[str, str, int], MxPool] = {}
        self._tls_context = _unverified_context()
        self._pruned = time.monotonic()

    async def deliver(
        self, sender: str, recipients: list[str], data: bytes, *, smtputf8: bool = False
    ) -> list[GroupOutcome]:
        """One transaction per recipient domain, concurrently; one outcome per domain,
        in the order the domains first appear in `recipients`."""
        if not recipients:
            raise ValueError("no recipients")
        await self._maybe_prune()
        groups: dict[str, list[str]] = {}
        for rcpt in recipients:
            groups.setdefault(rcpt.rpartition("@")[2].lower(), []).append(rcpt)
        return list(
            await asyncio.gather(
                *(self._deliver_group(domain, rcpts, sender, data, smtputf8) for domain, rcpts in groups.items())
            )
        )

    async def close(self) -> None:
        pools, self.pools = list(self.pools.values()), {}
        await asyncio.gather(*(pool.close() for pool in pools))

    async def _deliver_group(
        self, domain: str, recipients: list[str], sender: str, data: bytes, smtputf8: bool
    ) -> GroupOutcome:
        try:
            hosts = await self.resolver.mail_hosts(domain)
        except DnsError as exc:
            log.warning("smtp mx domain=%s: %s", domain, exc)
            return GroupOutcome(recipients, None, exc)
        last: BaseException | None = None
        for host in hosts:
            try:
                addresses = await self.resolver.addresses(host)
            except DnsError as exc:
                log.warning("smtp mx=%s (for %s): %s", host, domain, exc)
                last = exc
                continue
            for address in addresses:
                pool = self._pool(host, address)
                try:
                    result = await self._send_via(pool, sender, recipients, data, smtputf8)
                except SmtpFailure as exc:
                    if not _try_next_relay(exc):
                        log.warning("smtp mx=%s failed permanently: %s", pool.name, _describe(exc))
                        return GroupOutcome(recipients, None, exc)
                    log.warning("smtp mx=%s failed, trying the next host: %s", pool.name, _describe(exc))
                    last = exc
                    continue
                return GroupOutcome(recipients, result, None)
        if last is None:
            last = TemporaryDnsError(domain, f"no address for its mail hosts ({', '.join(hosts)})")
        if isinstance(last, SmtpUtf8Unsupported):  # no MX of the domain can take it: a bounce, not our failure
            last = aiosmtplib.SMTPResponseException(554, f"5.6.7 no mail host of {domain} supports SMTPUTF8")
        return GroupOutcome(recipients, None, last)

    def _pool(self, host: str, address: str) -> MxPool:
        key = (host.lower(), address, self.settings.mx_port)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = MxPool(host, address, self.settings, self.ehlo_name, self._tls_context)
        return pool

    async def _send_via(
        self, pool: MxPool, sender: str, recipients: list[str], data: bytes, smtputf8: bool
    ) -> TransactionResult:
        return await pooled_transaction(pool, "mx", pool.host, sender, recipients, data, smtputf8)

    async def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_INTERVAL:
            return
        self._pruned = time.monotonic()
        await asyncio.gather(*(pool.prune() for pool in self.pools.values()))
        for key, pool in list(self.pools.items()):
            if pool.empty:
                del self.pools[key]
