"""One delivery attempt as named steps: claim → render → send → record.

Safe to run twice for the same id: the claim is atomic, so a redelivered message
finds the email already taken or done and returns.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import aiosmtplib

from core.content import content_from_dict
from core.mime import envelope_recipients, render
from core.model import ClaimedEmail, EventType, Outcome, Status
from core.store import Store, utcnow
from workers.classify import Kind, classify
from workers.smtp import SmtpTransport

log = logging.getLogger(__name__)


class TransientDeliveryError(Exception):
    """Raised so Dramatiq's Retries middleware schedules the next attempt."""


class Deliverer:
    def __init__(
        self, store: Store, transport: SmtpTransport, message_id_domain: str, lease: timedelta
    ) -> None:
        self.store = store
        self.transport = transport
        self.message_id_domain = message_id_domain
        self.lease = lease

    async def deliver(self, email_id: int) -> Status | None:
        """Attempt delivery; returns the recorded status (None if nothing to do)."""
        claimed = await self.store.claim(email_id, self.lease)
        if claimed is None:
            log.info("email %s not claimable (done or held elsewhere)", email_id)
            return None
        content = content_from_dict(claimed.content)
        data = render(content, message_id=f"{claimed.message_id}@{self.message_id_domain}", date=utcnow())
        try:
            accepted = await self.transport.send(
                content.from_address.email, envelope_recipients(content), data
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return await self._failed(claimed, exc)
        detail = ""
        if accepted.refused:
            detail = "refused: " + ", ".join(
                f"{rcpt} ({code} {text})" for rcpt, (code, text) in accepted.refused.items()
            )
        await self.store.record_outcome(
            claimed,
            Outcome(Status.SENT, EventType.SENT, accepted.code, accepted.message, detail),
        )
        return Status.SENT

    async def _failed(self, claimed: ClaimedEmail, exc: BaseException) -> Status:
        verdict = classify(exc)
        if verdict.kind is Kind.PERMANENT:
            await self.store.record_outcome(
                claimed,
                Outcome(Status.BOUNCED, EventType.BOUNCED, verdict.code, verdict.message, verdict.message),
            )
            return Status.BOUNCED
        await self.store.record_outcome(
            claimed,
            Outcome(Status.DEFERRED, EventType.DEFERRED, verdict.code, verdict.message, verdict.message),
        )
        raise TransientDeliveryError(verdict.message) from exc

    async def give_up(self, email_id: int, reason: str) -> None:
        """Retries exhausted: the email ends FAILED, with an event."""
        if await self.store.fail_if_not_final(email_id, reason):
            log.warning("email %s failed: %s", email_id, reason)
