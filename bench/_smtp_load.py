"""An SMTP load generator for the benchmarks: many connections, each submitting
pre-rendered messages one after another over one (optionally authenticated, optionally
TLS) connection, closed loop for a fixed time. The same code drives Postfix and Postwire."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import ssl
import time
from dataclasses import dataclass, field

import aiosmtplib

FROM, RCPT = "bench@example.com", "rcpt@example.com"


def message(seq: int, run: str, size: int = 1536) -> bytes:
    """A plain-text message of `size` octets with its own Message-ID (so Postwire's
    Message-ID dedupe never folds two of them into one email)."""
    head = (
        f"From: Bench <{FROM}>\r\nTo: <{RCPT}>\r\nSubject: bench {seq}\r\n"
        f"Date: {email.utils.format_datetime(dt.datetime.now(dt.UTC))}\r\n"
        f"Message-ID: <{run}.{seq}@bench.example.com>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again, 0123456789.\r\n"
    body = (line * (size // len(line) + 1))[: max(0, size - len(head) - 2)]
    return head + body + b"\r\n"


@dataclass
class Load:
    rate: float = 0.0
    latencies: list[float] = field(default_factory=list)  # ms per message, DATA included
    errors: dict[str, int] = field(default_factory=dict)  # by reply code (or exception type)
    ids: list[str] = field(default_factory=list)  # the 250 replies' text
    client_cpu: float = 0.0  # percent of one core used by this load generator

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the bench's self-signed certificate
    return context


async def smtp_load(port: int, connections: int, seconds: float, *, key: str | None = None,
                    tls: str = "none", size: int = 1536, run: str = "r", host: str = "127.0.0.1") -> Load:
    """`tls`: "none", "starttls" or "implicit". With `key`, AUTH as user `apikey`."""
    load = Load()
    stop = time.perf_counter() + seconds
    counter = iter(range(1 << 62))

    async def connection(n: int) -> None:
        smtp = aiosmtplib.SMTP(hostname=host, port=port, use_tls=tls == "implicit",
                               start_tls=tls == "starttls", tls_context=client_tls(), timeout=60)
        try:
            await smtp.connect()
            if key is not None:
                await smtp.login("apikey", key)
        except (aiosmtplib.SMTPException, OSError) as exc:
            load.error(f"connect/auth {getattr(exc, 'code', type(exc).__name__)}")
            return
        try:
            while time.perf_counter() < stop:
                seq = next(counter)
                body = message(seq, run, size)
                begun = time.perf_counter()
                try:
                    _, reply = await smtp.sendmail(FROM, [RCPT], body)
                except aiosmtplib.SMTPResponseException as exc:
                    load.error(str(exc.code))
                    if exc.code >= 500 or not smtp.is_connected:
                        return
                    await smtp.rset()
                    continue
                except aiosmtplib.SMTPRecipientsRefused:
                    load.error("rcpt refused")
                    continue
                load.latencies.append((time.perf_counter() - begun) * 1000)
                load.ids.append(reply)
            await smtp.quit()
        except (aiosmtplib.SMTPException, OSError) as exc:
            load.error(type(exc).__name__)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(connection(n) for n in range(connections)))
    elapsed = time.perf_counter() - start
    load.rate, load.client_cpu = len(load.latencies) / elapsed, (time.process_time() - cpu) / elapsed * 100
    return load
