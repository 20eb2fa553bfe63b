"""The SMTP submission listener (`postwire submission`): applications that only speak
SMTP send through Postwire, with an API key as the AUTH password.

- Ports: STARTTLS required (587), implicit TLS (465), plain with STARTTLS offered
  (2525). AUTH (server/submission_auth.py) only over TLS, except from a loopback
  client with POSTWIRE_SUBMISSION_ALLOW_PLAIN_AUTH (development); MAIL without AUTH
  gets `530 5.7.0`.
- DATA: core.emails.submission.parse_submission and the verified-domain rule, then one
  message is charged to the key's send budget (the one Send draws on, same limiter),
  then EmailService.send, the accept path of Send. A message refused before the charge
  (bad header, oversized, bad address, unverified domain) spends nothing; over the
  budget: `451 4.7.0` with the seconds to wait, and MAIL answers the same (without
  charging) from then until that wait is over. `250 2.0.0 OK id=<message id>` only once
  the email is stored. Refusals:
  552 5.3.4 (size: also SIZE in EHLO, and aiosmtpd's own limit), 553 5.1.3 (an
  address), 550 5.6.0 (headers and the rest), 550 5.7.1 (From domain not verified),
  451 4.3.0 (database or broker down: the client retries; the Message-ID, or the
  digest of the message, makes the retry find the stored email instead of a second one).
- PIPELINING, 8BITMIME and SMTPUTF8; one connection submits any number of messages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP

from core.emails.service import EmailService
from core.emails.submission import parse_submission
from core.emails.validation import SendLimits
from core.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    PostwireError,
    Unavailable,
)
from core.keys.manager import KeyManager, Principal
from core.limits.interface import RateLimiter
from server.policy import POLICIES
from server.ratelimit import Defaults, budgets
from server.submission_auth import (
    MESSAGES,
    SubmissionAuth,
    is_loopback,
    peer_address,
    session_principal,
)

log = logging.getLogger(__name__)

SEND_POLICY = POLICIES["/postwire.v1.EmailService/Send"]
TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
MODES = ("starttls", "implicit", "plain")  # 587, 465, 2525


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def invalid_reply(exc: InvalidArgument) -> str:
    """The SMTP reply for a refused message, from its field violations."""
    fields = [v.field for v in exc.violations]
    detail = _one_line(exc.message)
    if any(f == "size" for f in fields):
        return f"552 5.3.4 Message too big: {detail}"
    if any(f.split("[")[0] in ("from", "rcpt", "recipients", "mail_from") for f in fields):
        return f"553 5.1.3 Bad address: {detail}"
    return f"550 5.6.0 Message refused: {detail}"


class SubmissionHandler(SubmissionAuth):
    """aiosmtpd handler: authenticated, rate-limited submission into EmailService."""

    def __init__(self, keys: KeyManager, limiter: RateLimiter, service: EmailService, limits: SendLimits, *,
                 failures_per_minute: int, defaults: Defaults | None) -> None:
        super().__init__(keys, limiter, failures_per_minute)
        self.service = service
        self.limits = limits
        self.defaults = defaults  # None: POSTWIRE_RATE_LIMITS=false
        self._over_budget: dict[str, tuple[int, float]] = {}  # key id -> (limit, monotonic time it has room)

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname  # what aiosmtpd leaves to a handler with this hook
        return [*responses[:-1], "250-PIPELINING", "250-ENHANCEDSTATUSCODES", responses[-1]]

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        principal = session_principal(session)
        if principal is None:  # aiosmtpd refuses first (auth_required); kept for safety
            return "530 5.7.0 Authentication required"
        over = self._over_budget.get(principal.key_id)
        if over is not None:  # refused a moment ago: say so before the client sends DATA
            limit, until = over
            if until > time.monotonic():
                MESSAGES.labels(outcome="deferred").inc()
                return _over_reply(limit, until - time.monotonic())
            del self._over_budget[principal.key_id]
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: list[str]) -> str:
        if len(envelope.rcpt_tos) >= self.limits.max_recipients:
            return f"452 4.5.3 Too many recipients (at most {self.limits.max_recipients} per message)"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        principal = session_principal(session)
        if principal is None:
            return "530 5.7.0 Authentication required"
        raw: bytes = envelope.original_content or envelope.content or b""
        try:
            content, options = parse_submission(raw, str(envelope.mail_from or ""), list(envelope.rcpt_tos),
                                                self.limits, smtputf8=bool(getattr(envelope, "smtp_utf8", False)))
            options = dataclasses.replace(options, test=principal.test)
            senders = getattr(self.service, "senders", None)
            if senders is not None and not principal.test:  # refused before the charge; cached
                await senders.check(principal.account_id, content.from_address.email)
            if (over := await self._charge(principal)) is not None:
                return over
            message_id, _ = await self.service.send(principal.account_id, content, options)
        except InvalidArgument as exc:
            return self._rejected(principal.key_id, invalid_reply(exc))
        except FailedPrecondition as exc:
            return self._rejected(principal.key_id, f"550 5.7.1 {_one_line(exc.message)}")
        except AlreadyExists:
            return self._rejected(principal.key_id, "550 5.7.0 A different message with this Message-ID was"
                                  " already submitted; give it a new Message-ID")
        except Unavailable:
            log.warning("submission: cannot store a message from key %s (unavailable)", principal.key_id)
            MESSAGES.labels(outcome="deferred").inc()
            return TRY_LATER
        except PostwireError as exc:
            return self._rejected(principal.key_id, f"550 5.7.0 {_one_line(exc.message)}")
        except Exception:  # noqa: BLE001 - never a traceback to the client; nothing stored
            log.exception("submission: unexpected failure for a message from key %s", principal.key_id)
            MESSAGES.labels(outcome="deferred").inc()
            return TRY_LATER
        MESSAGES.labels(outcome="accepted").inc()
        log.info("submission: stored %s from key %s for %d recipient(s)", message_id, principal.key_id,
                 len(envelope.rcpt_tos))
        return f"250 2.0.0 OK id={message_id}"

    async def _charge(self, principal: Principal) -> str | None:
        """Count one message against the key's and account's send budgets; the 451 reply
        when they are spent (nothing counted then)."""
        if self.defaults is None:
            return None
        decision = await self.limiter.check(budgets(principal, SEND_POLICY, self.defaults))
        if decision.allowed:
            return None
        wait = max(decision.retry_after, 0.1)
        if len(self._over_budget) > 10_000:  # bounded: expired entries are dropped on MAIL anyway
            self._over_budget.clear()
        self._over_budget[principal.key_id] = (decision.limit, time.monotonic() + wait)
        MESSAGES.labels(outcome="deferred").inc()
        log.info("submission: key %s over its send budget (%s)", principal.key_id, decision.budget)
        return _over_reply(decision.limit, wait)

    def _rejected(self, key_id: str, reply: str) -> str:
        MESSAGES.labels(outcome="rejected").inc()
        log.info("submission: refused a message from key %s: %s", key_id, reply)
        return reply


def _over_reply(limit: int, wait: float) -> str:
    return f"451 4.7.0 Rate limit exceeded ({limit} messages per minute); retry in {max(wait, 0.1):.1f} seconds"


class SubmissionSMTP(SMTP):
    """aiosmtpd's SMTP with: AUTH allowed on implicit TLS (aiosmtpd only knows about
    STARTTLS) and, when asked, in plain text from loopback; RFC 3463 enhanced codes
    in the replies aiosmtpd words itself."""

    def __init__(self, handler: Any, *, allow_plain_auth: bool = False, **options: Any) -> None:
        super().__init__(handler, **options)
        self.allow_plain_auth = allow_plain_auth

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self._original_transport is None and self.transport is None
        ssl_object = transport.get_extra_info("ssl_object") if first else None
        if first:
            peer = transport.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            if ssl_object is not None or (self.allow_plain_auth and is_loopback(address)):
                self._auth_require_tls = False
        super().connection_made(transport)
        if ssl_object is not None and self.session is not None:  # implicit TLS
            self.session.ssl = {"ssl_object": ssl_object, "cipher": transport.get_extra_info("cipher")}

    async def push(self, status: AnyStr) -> None:
        if isinstance(status, str):
            if status.startswith("552 Error"):
                status = f"552 5.3.4 Message too big: at most {self.data_size_limit} bytes"  # type: ignore[assignment]
            elif status.startswith("500 Line too long"):  # in DATA: a line over 1000 octets
                status = "500 5.6.0 Line too long (RFC 5321 4.5.3.1.6: at most 1000 octets)"  # type: ignore[assignment]
            elif status.startswith("530 Must issue a STARTTLS"):
                status = "530 5.7.0 Must issue a STARTTLS command first"  # type: ignore[assignment]
        await super().push(status)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """The server context; an OSError naming the files when they cannot be loaded."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OSError(f"cannot load the TLS certificate {cert} and key {key} (POSTWIRE_SUBMISSION_TLS_CERT,"
                      f" POSTWIRE_SUBMISSION_TLS_KEY): {reason}") from exc
    return context


class SubmissionListener:
    """The submission ports on the running event loop."""

    def __init__(self, handler: SubmissionHandler, *, hostname: str, max_bytes: int, timeout: float,
                 tls: ssl.SSLContext | None, allow_plain_auth: bool = False, reuse_port: bool = False) -> None:
        self.handler = handler
        self.reuse_port = reuse_port  # several processes on the same ports (POSTWIRE_SUBMISSION_PROCESSES)
        self.hostname = hostname
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.tls = tls
        self.allow_plain_auth = allow_plain_auth
        self._servers: list[asyncio.base_events.Server] = []
        # aiosmtpd warns on every login that Session.login_data is deprecated (it sets it itself)
        logging.getLogger("mail.log").addFilter(lambda record: "login_data is deprecated" not in record.getMessage())

    def _protocol(self, mode: str) -> SMTP:
        return SubmissionSMTP(
            self.handler, data_size_limit=self.max_bytes, timeout=self.timeout, hostname=self.hostname or None,
            ident="Postwire submission", enable_SMTPUTF8=True, decode_data=False, auth_required=True,
            auth_require_tls=True, tls_context=self.tls if mode != "implicit" else None,
            require_starttls=mode == "starttls", allow_plain_auth=self.allow_plain_auth,
        )

    async def start(self, host: str, port: int, mode: str) -> int:
        """Listen on one port in `mode` (MODES); returns the port (useful with 0)."""
        if mode not in MODES:
            raise ValueError(f"unknown submission mode {mode!r}")
        if mode != "plain" and self.tls is None:
            raise ValueError(f"the {mode} submission port needs POSTWIRE_SUBMISSION_TLS_CERT and _KEY"
                             " (or set the port to 0)")
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: self._protocol(mode), host=host, port=port,
                                          ssl=self.tls if mode == "implicit" else None,
                                          reuse_port=self.reuse_port or None)
        self._servers.append(server)
        bound = int(server.sockets[0].getsockname()[1])
        log.info("submission listener (%s) on %s:%d", mode, host, bound)
        return bound

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            await server.wait_closed()
        self._servers = []


__all__ = ["SubmissionHandler", "SubmissionListener", "invalid_reply", "peer_address", "tls_context"]
