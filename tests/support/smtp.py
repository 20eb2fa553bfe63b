"""An in-process SMTP server (aiosmtpd) that records what arrives and injects faults.

Faults are keyed by recipient (lower-cased) and consumed in turn, one per transaction:
- `faults[rcpt]`: replies to give at DATA instead of accepting ("451 ...", "550 ...");
  the special reply "DISCONNECT" drops the connection mid-DATA, and "STALL <seconds>"
  sleeps that long before accepting (a slow or hung receiver);
- `rcpt_faults[rcpt]`: replies to give at RCPT TO for that recipient.
Besides, `refuse_all()` makes every transaction's DATA answer one reply (421 by default:
a relay refusing all mail for a while) until `accept_all()`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"]).strip("<>").split("@")[0]


@dataclass
class Recorder:
    received: list[Received] = field(default_factory=list)
    faults: dict[str, list[str]] = field(default_factory=dict)
    rcpt_faults: dict[str, list[str]] = field(default_factory=dict)
    in_data: Counter[str] = field(default_factory=Counter)  # domain -> transactions inside DATA now
    max_in_data: Counter[str] = field(default_factory=Counter)
    stalled: list[str] = field(default_factory=list)  # recipients whose DATA is stalling now
    lock: threading.Lock = field(default_factory=threading.Lock)
    refusing: str = ""  # when set, the reply to every DATA (see refuse_all)
    refused: int = 0  # transactions refused that way

    def refuse_all(self, reply: str = "421 4.3.2 Service not available, try again later") -> None:
        """Answer every transaction's DATA with `reply` until `accept_all()`."""
        self.refusing = reply

    def accept_all(self) -> None:
        self.refusing = ""

    def _next(self, table: dict[str, list[str]], rcpt: str) -> str | None:
        with self.lock:
            replies = table.get(rcpt.lower())
            return replies.pop(0) if replies else None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        reply = self._next(self.rcpt_faults, address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        refusing = self.refusing
        if refusing:
            with self.lock:
                self.refused += 1
            return refusing
        domains = {r.rpartition("@")[2].lower() for r in envelope.rcpt_tos}
        with self.lock:
            for d in domains:
                self.in_data[d] += 1
                self.max_in_data[d] = max(self.max_in_data[d], self.in_data[d])
        try:
            for rcpt in envelope.rcpt_tos:
                reply = self._next(self.faults, rcpt)
                if reply == "DISCONNECT":
                    server.transport.abort()
                    return "421 4.4.2 gone"
                if reply and reply.startswith("STALL"):
                    self.stalled.append(rcpt)
                    await asyncio.sleep(float(reply.split()[1]))
                    if server.transport is None or server.transport.is_closing():
                        return "421 4.4.2 gone"
                elif reply:
                    return reply
            with self.lock:
                self.received.append(
                    Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content)
                )
            return "250 2.0.0 Ok: queued"
        finally:
            with self.lock:
                for d in domains:
                    self.in_data[d] -= 1

    def by_message_id(self, message_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.message_id == message_id]

    def wait_for(self, message_id: str, timeout: float = 15.0) -> Received:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.by_message_id(message_id)
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"SMTP server never received {message_id}")


class SmtpServer:
    """A recording receiver on `host` (any 127.0.0.x stands for a host of its own) and
    `port` (a free one when 0)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **controller_options: Any) -> None:
        self.recorder = Recorder()
        self.host = host
        self.port = port or free_port()
        controller_options.setdefault("enable_SMTPUTF8", True)
        self.controller = Controller(self.recorder, hostname=host, port=self.port, **controller_options)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()
