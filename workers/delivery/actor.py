"""One delivery attempt as named guard steps (after postal's outgoing message processor):
claim → check expiry → check suppression → check domain limits → send → record.

Safe to run twice for the same id: the claim is atomic, so a redelivered message
finds the email already taken or done and returns.

The database writes of an attempt ride out a short database outage (a restart, a
failover): they are retried while the claim's lease lasts. Otherwise an email the relay
has just accepted would stay SENDING until the lease ran out and be sent a second time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from core.delivery.deadletter import DeadLetters
from core.delivery.store import DeliveryStore
from core.domains import dkim
from core.domains.senders import SigningKeys
from core.emails.addresses import ascii_email
from core.emails.content import EmailContent, content_from_dict
from core.emails.mime import render, requires_smtputf8
from core.emails.model import (
    AttemptResult,
    ClaimedEmail,
    EventType,
    NewEvent,
    RecipientState,
    Status,
    overall,
)
from core.emails.raw_mime import render_raw
from core.emails.scheduling import retry_delay
from core.errors import Unavailable
from core.observability import context
from core.returns.paths import ReturnPaths
from core.storage.db import database_errors_as_unavailable
from core.times import utcnow
from core.tracking.apply import Tracker
from workers.delivery.attempt import Attempt, RetryPolicy
from workers.delivery.classify import (
    classify,
    classify_reply,
)
from workers.delivery.domain_limits import DomainLimiter
from workers.delivery.smtp import GroupOutcome, SmtpTransport

log = logging.getLogger(__name__)
T = TypeVar("T")

# A write retried through a database outage stops this long before the claim's lease
# ends, so that it never lands after the scheduler could have released the claim.
LEASE_MARGIN = timedelta(seconds=1)

class Deliverer:
    def __init__(
        self,
        store: DeliveryStore,
        transport: SmtpTransport,
        limiter: DomainLimiter,
        dead_letters: DeadLetters,
        message_id_domain: str,
        policy: RetryPolicy,
        signing_keys: SigningKeys | None = None,
        on_signed: Callable[[float, int], None] | None = None,
        returns: ReturnPaths | None = None,
        tracker: Tracker | None = None,
    ) -> None:
        self.tracker = tracker  # None: no open pixel, no tracked links (core/tracking)
        self.returns = returns  # None: the From address is the envelope sender, no unsubscribe headers
        self.signing_keys = signing_keys  # None: messages go out unsigned
        self.on_signed = on_signed  # (seconds, signatures) of each signing, for the metrics
        self.store = store
        self.transport = transport
        self.limiter = limiter
        self.dead_letters = dead_letters
        self.message_id_domain = message_id_domain
        self.policy = policy

    async def deliver(self, email_id: int) -> Status | None:
        """Attempt delivery; returns the recorded status (None if nothing was done)."""
        lease_end = utcnow() + self.policy.lease  # claim() holds it until a moment later
        claimed = await self.store.claim(email_id, self.policy.lease)
        if claimed is None:
            log.info("email %s not claimable (done, deferred or held elsewhere)", email_id)
            return None
        context.bind_email(claimed.message_id, claimed.account_id)  # for this attempt's log lines
        try:
            return await self._attempt(claimed, lease_end)
        except Exception:
            await self._durably("release", lease_end, lambda: self.store.release(claimed, self.policy.min_backoff))
            raise

    async def _durably(self, what: str, lease_end: datetime, write: Callable[[], Awaitable[T]]) -> T:
        """Run one of the attempt's database writes; while the database cannot be
        reached, retry it with backoff until shortly before the lease ends."""
        delay = 0.1
        while True:
            try:
                async with database_errors_as_unavailable():
                    return await write()
            except Unavailable as exc:
                if utcnow() + timedelta(seconds=delay) >= lease_end - LEASE_MARGIN:
                    raise
                log.warning("%s: database unavailable (%s); retrying in %.1fs", what, exc.__cause__ or exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _attempt(self, claimed: ClaimedEmail, lease_end: datetime) -> Status | None:
        content = content_from_dict(claimed.content)
        attempt = Attempt(claimed, content, lease_end)
        if claimed.expires_at and utcnow() >= claimed.expires_at:
            return await self._give_up(claimed, attempt, "expired before it could be delivered")
        suppressed = claimed.suppressed
        if suppressed is None:  # not looked up with the claim
            suppressed = await self._durably("suppression check", lease_end, lambda: self.store.suppressed(claimed.account_id, attempt.pending()))
        for address, reason in suppressed.items():
            attempt.set(address, Status.SUPPRESSED, EventType.SUPPRESSED, detail=f"on the suppression list: {reason}")
        pending = attempt.pending()
        if pending and claimed.test_mode:
            await self._durably("record sending", lease_end, lambda: self.store.record_sending(claimed))
            for address in pending:
                attempt.set(address, Status.SENT, EventType.SENT, 250, "test mode: accepted, not delivered",
                            "sent with a test key: nothing reached SMTP")
            pending = []
        if pending:
            domains = [a.rpartition("@")[2] for a in pending]
            async with self.limiter.hold(domains) as got_slots:
                if not got_slots:
                    delay = timedelta(seconds=random.uniform(0.5, 2.0))
                    await self._durably("release", lease_end, lambda: self.store.release(claimed, delay))
                    return None
                await self._durably("record sending", lease_end, lambda: self.store.record_sending(claimed))
                await self._send(claimed, content, pending, attempt)
        return await self._conclude(claimed, attempt)

    async def _send(self, claimed: ClaimedEmail, content: EmailContent, pending: list[str], attempt: Attempt) -> None:
        keys = await self._keys(claimed, content, attempt.lease_end)
        bounce_domain = self.returns.bounce_domain(keys[0].domain if keys else None) if self.returns else ""
        extra: dict[str, str] = {}
        if self.returns is not None and getattr(content, "unsubscribe", False):
            recipient = list(attempt.recipients).index(pending[0]) if len(pending) == 1 else -1
            extra = self.returns.unsubscribe_headers(claimed.account_id, claimed.message_id, recipient, bounce_domain)
        message_id = f"{claimed.message_id}@{self.message_id_domain}"
        content = await self._tracked(claimed, content, attempt, extra)  # before signing: the signature covers it
        if content.raw:  # submitted over SMTP: sent as submitted, plus what Postwire adds
            data = render_raw(content.raw, message_id=message_id, date=utcnow(), extra_headers=extra)
        else:
            data = render(dataclasses.replace(content, headers={**content.headers, **extra}), message_id=message_id, date=utcnow())
        data = self._sign(data, keys)  # every header is final by now
        sender = ascii_email(content.from_address.email) or content.from_address.email
        if self.returns is not None:
            sender = self.returns.envelope_sender(claimed.account_id, claimed.message_id, sender, bounce_domain)
        outcomes: list[GroupOutcome] = await self.transport.deliver(
            sender, pending, data, smtputf8=requires_smtputf8(content)
        )
        for outcome in outcomes:
            if outcome.result is None:
                verdict = classify(outcome.error)  # type: ignore[arg-type]
                for address in outcome.recipients:
                    attempt.apply(address, verdict)
                continue
            result = outcome.result
            via = f"via {result.relay}" + (f" ({result.tls})" if result.tls else " (no TLS)")
            for address in result.accepted:
                attempt.set(address, Status.SENT, EventType.SENT, result.data_code, result.data_message, via)
            for address, (code, message) in result.refused.items():
                attempt.apply(address, classify_reply(code, message))

    async def _tracked(self, claimed: ClaimedEmail, content: EmailContent, attempt: Attempt,
                       extra: dict[str, str]) -> EmailContent:
        """The content with the open pixel and tracked links its Send (or account) asks for."""
        tracker = self.tracker
        if tracker is None or content.raw:
            return content
        opens, clicks = await self._durably("tracking defaults", attempt.lease_end,
                                            lambda: tracker.decide(content, claimed.account_id))
        recipient = 0 if len(attempt.recipients) == 1 else -1  # tokens name a lone recipient only
        return tracker.rewrite(content, claimed.account_id, claimed.message_id, recipient, opens, clicks, extra)

    async def _keys(self, claimed: ClaimedEmail, content: EmailContent, lease_end: datetime) -> list[dkim.SigningKey]:
        """The active DKIM keys of the email's verified From domain ([] when none)."""
        if self.signing_keys is None:
            return []
        signing_keys = self.signing_keys
        return await self._durably(
            "signing keys", lease_end,
            lambda: signing_keys.for_sender(claimed.account_id, content.from_address.email, claimed.created_at),
        )

    def _sign(self, data: bytes, keys: list[dkim.SigningKey]) -> bytes:
        """The message with a DKIM-Signature per key (unchanged without keys). Signs the
        exact bytes that go on the wire."""
        if not keys:
            return data
        started = time.perf_counter()
        signed = dkim.sign(data, keys)
        if self.on_signed is not None:
            self.on_signed(time.perf_counter() - started, len(keys))
        return signed

    async def _conclude(self, claimed: ClaimedEmail, attempt: Attempt) -> Status:
        deferred = [a for a, s in attempt.recipients.items() if s.status is Status.DEFERRED]
        if deferred:
            now = utcnow()
            delay = retry_delay(
                claimed.attempts, min_backoff=self.policy.min_backoff, max_backoff=self.policy.max_backoff, hint=attempt.hint
            )
            deadline = claimed.started_at + self.policy.lifetime
            if claimed.expires_at:
                deadline = min(deadline, claimed.expires_at)
            if now + delay > deadline:
                return await self._give_up(
                    claimed, attempt, f"gave up after {claimed.attempts} attempts: {attempt.last_error}"
                )
            await self._finish(
                claimed,
                attempt,
                AttemptResult(Status.DEFERRED, attempt.recipients, attempt.events, attempt.last_error, now + delay, attempt.suppress),
            )
            return Status.DEFERRED
        status = overall(attempt.recipients)
        await self._finish(
            claimed, attempt, AttemptResult(status, attempt.recipients, attempt.events, attempt.last_error, None, attempt.suppress)
        )
        if status is Status.FAILED:
            await self._dead_letter(claimed, attempt.last_error, attempt)
        return status

    async def _give_up(self, claimed: ClaimedEmail, attempt: Attempt, reason: str) -> Status:
        for address in attempt.pending():
            state = attempt.recipients[address]
            attempt.recipients[address] = RecipientState(Status.FAILED, state.code, state.message)
        attempt.events.append(NewEvent(EventType.FAILED, detail=reason))
        status = overall(attempt.recipients)
        await self._finish(claimed, attempt, AttemptResult(status, attempt.recipients, attempt.events, reason, None, attempt.suppress))
        await self._dead_letter(claimed, reason, attempt)
        return status

    async def _finish(self, claimed: ClaimedEmail, attempt: Attempt, result: AttemptResult) -> None:
        recorded = await self._durably("record attempt", attempt.lease_end, lambda: self.store.finish_attempt(claimed, result))
        if not recorded:
            log.warning(
                "email %s: claim lost before its attempt %d was recorded (lease expired); outcome %s not recorded",
                claimed.message_id, claimed.attempts, result.status.value,
            )

    async def _dead_letter(self, claimed: ClaimedEmail, reason: str, attempt: Attempt) -> None:
        await self.dead_letters.publish(
            {
                "message_id": claimed.message_id,
                "account_id": claimed.account_id,
                "attempts": claimed.attempts,
                "reason": reason,
                "recipients": {a: s.to_json() for a, s in attempt.recipients.items()},
                "failed_at": utcnow().isoformat(),
            }
        )

    async def give_up(self, email_id: int, reason: str, *, pending_only: bool = False) -> None:
        """Dramatiq's retries of a crashing attempt ran out: the email ends FAILED
        (with `pending_only`, unless it was deferred or scheduled meanwhile)."""
        keep = (Status.DEFERRED, Status.SCHEDULED) if pending_only else ()
        if await self.store.fail_if_not_final(email_id, reason, keep=keep):
            log.warning("email %s failed: %s", email_id, reason)
            await self.dead_letters.publish({"email_id": email_id, "reason": reason, "failed_at": utcnow().isoformat()})
