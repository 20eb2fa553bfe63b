"""The inbound SMTP listener (`postwire inbound`): where bounces, feedback-loop
complaints and mailto unsubscribes arrive (port 25 of the bounce domains' MX host).

- RCPT: only a genuine `b+<token>` / `u+<token>` address, or fbl@ / abuse@ /
  postmaster@, at a bounce domain (`<POSTWIRE_BOUNCE_SUBDOMAIN>.<a sending domain,
  in any state>` or POSTWIRE_RETURN_PATH_DOMAIN); anything else `550 5.1.1`.
- SIZE is advertised; a message over POSTWIRE_INBOUND_MAX_BYTES gets 552. A client
  silent for POSTWIRE_INBOUND_TIMEOUT seconds is disconnected.
- DATA: the raw report is committed to `inbound_reports` before the 250; with the
  database down the answer is `451 4.3.0` and the sender retries. Then the report id
  is published to the workers, best effort (the scheduler republishes what was not).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiosmtpd.smtp import SMTP

from core.emails.after_commit import best_effort
from core.returns.inbound import InboundStore

log = logging.getLogger(__name__)

TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
NO_SUCH_USER = "550 5.1.1 No such recipient here"


class InboundHandler:
    """aiosmtpd handler: accepts reports for Postwire's return addresses only."""

    def __init__(self, store: InboundStore, publish: Callable[[int], Awaitable[None]], publish_timeout: float) -> None:
        self.store = store
        self.publish = publish
        self.publish_timeout = publish_timeout

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        try:
            accepted = await self.store.accepts(address)
        except Exception:  # noqa: BLE001 - the database is down: the sender retries later
            log.warning("inbound: cannot check %s", address, exc_info=True)
            return TRY_LATER
        if not accepted:
            log.info("inbound: refused RCPT %s from %s", address, _peer(session))
            return NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content or b""
        try:
            ids = await self.store.store(_peer(session), str(envelope.mail_from or ""), list(envelope.rcpt_tos), raw)
        except Exception:  # noqa: BLE001 - not durable, so not accepted
            log.warning("inbound: cannot store a report from %s", _peer(session), exc_info=True)
            return TRY_LATER
        for report_id in ids:
            await best_effort(lambda r=report_id: self._publish(r), what=f"publishing inbound report {report_id}",
                              timeout=self.publish_timeout)
        log.info("inbound: stored report(s) %s for %s", ids, ", ".join(envelope.rcpt_tos))
        return "250 2.0.0 OK: report received"

    async def _publish(self, report_id: int) -> None:
        await self.publish(report_id)
        await self.store.mark_published(report_id)


def _peer(session: Any) -> str:
    peer = getattr(session, "peer", None)
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


class InboundListener:
    """The listener on the running event loop."""

    def __init__(self, handler: InboundHandler, *, hostname: str, max_bytes: int, timeout: float) -> None:
        self.handler = handler
        self.hostname = hostname
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._server: asyncio.base_events.Server | None = None

    def _protocol(self) -> SMTP:
        return SMTP(self.handler, data_size_limit=self.max_bytes, timeout=self.timeout, hostname=self.hostname or None,
                    ident="Postwire inbound", enable_SMTPUTF8=True)

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the port (useful with 0)."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host=host, port=port)
        bound = int(self._server.sockets[0].getsockname()[1])
        log.info("inbound listener on %s:%d", host, bound)
        return bound

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
