"""SMTP transport: hands rendered bytes to the configured relays with aiosmtplib.

One transport per worker process, used from one event loop. Relays are tried in
priority order; each has a pool of reused connections (`workers.delivery.pool`).
Moving to the next relay: the relay cannot be reached or set up (connect, TLS, EHLO,
AUTH, timeouts, disconnects), it lacks SMTPUTF8 when the message needs it, or it
answers MAIL/DATA with 4xx. A 5xx to MAIL or DATA is about the message: raised at
once. RCPT refusals are per recipient and reported in the result, never raised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib import SMTPStatus

from core.settings import Settings
from workers.delivery.pool import Connection, ConnectionPool, RelayPool

log = logging.getLogger(__name__)


class SmtpUtf8Unsupported(aiosmtplib.SMTPException):
    """The message needs SMTPUTF8 (non-ASCII addresses) and the relay does not offer it."""

    def __init__(self, relay: str) -> None:
        self.relay = relay
        super().__init__(f"relay {relay} does not support SMTPUTF8")


@dataclass(frozen=True)
class TransactionResult:
    """One completed SMTP transaction.

    `data_code`/`data_message` are the reply to DATA; `data_code` is 0 when every
    recipient was refused and DATA was not sent. `refused` maps each recipient the
    relay refused at RCPT to its (code, message).
    """

    relay: str
    data_code: int
    data_message: str
    accepted: list[str]
    refused: dict[str, tuple[int, str]]
    tls: str = ""  # the TLS version of the session ("TLSv1.3"); "" for plain text


@dataclass(frozen=True)
class GroupOutcome:
    """What became of one group of recipients (one destination domain for MX delivery,
    all of them through a relay): a completed transaction, or the error to classify
    for every recipient of the group."""

    recipients: list[str]
    result: TransactionResult | None
    error: BaseException | None


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        self.pools = [
            RelayPool(
                relay,
                size=settings.smtp_pool_size,
                max_messages=settings.smtp_max_messages_per_connection,
                idle_timeout=settings.smtp_idle_timeout,
            )
            for relay in settings.relays()
        ]

    async def send(
        self, sender: str, recipients: list[str], data: bytes, *, smtputf8: bool = False
    ) -> TransactionResult:
        """Deliver through the first relay that takes the transaction.

        Raises the aiosmtplib error of a 5xx to MAIL or DATA at once, and the last
        relay's error when every relay failed transiently.
        """
        if not recipients:
            raise ValueError("no recipients")
        last: Exception | None = None
        for pool in self.pools:
            try:
                return await self._send_via(pool, sender, recipients, data, smtputf8)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if not _try_next_relay(exc):
                    log.warning("smtp relay=%s failed permanently: %s", pool.name, _describe(exc))
                    raise
                log.warning("smtp relay=%s failed, trying the next relay: %s", pool.name, _describe(exc))
                last = exc
        assert last is not None
        raise last

    async def deliver(
        self, sender: str, recipients: list[str], data: bytes, *, smtputf8: bool = False
    ) -> list[GroupOutcome]:
        """`send` as one group of all the recipients; an SMTP or network failure is
        that group's outcome instead of being raised."""
        try:
            result = await self.send(sender, recipients, data, smtputf8=smtputf8)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return [GroupOutcome(list(recipients), None, exc)]
        return [GroupOutcome(list(recipients), result, None)]

    async def close(self) -> None:
        for pool in self.pools:
            await pool.close()

    async def _send_via(
        self, pool: RelayPool, sender: str, recipients: list[str], data: bytes, smtputf8: bool
    ) -> TransactionResult:
        return await pooled_transaction(pool, "relay", pool.name, sender, recipients, data, smtputf8)

async def pooled_transaction(
    pool: ConnectionPool, kind: str, peer: str, sender: str, recipients: list[str], data: bytes, smtputf8: bool
) -> TransactionResult:
    """One transaction on a connection of `pool` (given back reusable only after a clean
    transaction), logged as `smtp <kind>=<pool>`; `peer` names the server in the result."""
    conn = await pool.acquire()
    ok = False
    try:
        result = await _transaction(conn, peer, sender, recipients, data, smtputf8)
        ok = True
    finally:
        await pool.release(conn, reusable=ok)
    log.info(
        "smtp %s=%s data=%s accepted=%d refused=%d tls=%s",
        kind, pool.name, result.data_code, len(result.accepted), len(result.refused), result.tls or "none",
    )
    return result


async def _transaction(
    conn: Connection, relay: str, sender: str, recipients: list[str], data: bytes, smtputf8: bool
) -> TransactionResult:
    client = conn.client
    options: list[str] = []
    encoding = "ascii"
    if smtputf8:
        if not client.supports_extension("smtputf8"):
            raise SmtpUtf8Unsupported(relay)
        options.append("SMTPUTF8")
        encoding = "utf-8"
    if not data.isascii() and client.supports_extension("8bitmime"):
        options.append("BODY=8BITMIME")
    if client.supports_extension("size"):
        options.append(f"SIZE={len(data)}")

    await client.mail(sender, options=options, encoding=encoding)
    accepted: list[str] = []
    refused: dict[str, tuple[int, str]] = {}
    for rcpt in recipients:
        try:
            await client.rcpt(rcpt, encoding=encoding)
            accepted.append(rcpt)
        except aiosmtplib.SMTPRecipientRefused as exc:
            refused[rcpt] = (exc.code, exc.message)
    if not accepted:
        await client.rset()
        return TransactionResult(relay, 0, "", [], refused)
    reply = await client.data(data)
    return TransactionResult(relay, reply.code, reply.message, accepted, refused, tls_version(client))


def tls_version(client: aiosmtplib.SMTP) -> str:
    """The session's TLS version ("TLSv1.3"), or "" when it is plain text."""
    ssl_object = client.get_transport_info("ssl_object")
    return (ssl_object.version() or "TLS") if ssl_object else ""


def _try_next_relay(exc: BaseException) -> bool:
    """Whether another relay might succeed where this one failed."""
    if isinstance(exc, (aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPDataError)):
        return exc.code < 500  # 4xx to MAIL/DATA: this relay, now; 5xx: the message
    if isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == SMTPStatus.domain_unavailable:
        return True  # 421 to any command: the relay is closing the session
    # Connect/TLS/EHLO/AUTH failures, timeouts, disconnects, missing SMTPUTF8.
    return isinstance(exc, (aiosmtplib.SMTPException, OSError, TimeoutError))


def _describe(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    text = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}" + (f" {code}" if code else "") + (f": {text}" if text else "")
