"""What one stored inbound report does: find its email, read it, apply the outcome,
record the report's state. Run by the parse actor; safe to run twice.

The email comes from the address the report was sent to: `b+<token>` (a bounce) or
`u+<token>` (a mailto unsubscribe, whatever the message says), or for fbl@ / abuse@ /
postmaster@ from a `b+<token>` return path found in the embedded original. The token
names the email; the report names the recipient, which must be one of that email's own
recipients (Outcomes.apply). States (core/returns/schema.py):

    bounce / complaint / delay / unsubscribe   what it changed (the strongest, when several)
    ignored        forged or unknown token, not a recipient, already recorded, delivered DSN
    unparseable    nothing in it reads as a report
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import select

from core.emails.reads import recipients_from_json
from core.returns.inbound import IGNORED, UNPARSEABLE, InboundStore
from core.returns.outcomes import (
    BOUNCE,
    COMPLAINT_KIND,
    DELAY,
    UNSUBSCRIBE_KIND,
    Applied,
    Feedback,
    Outcomes,
)
from core.returns.parse import parse
from core.returns.tokens import BOUNCE as BOUNCE_TOKEN
from core.returns.tokens import UNSUBSCRIBE as UNSUBSCRIBE_TOKEN
from core.returns.tokens import Claim
from core.storage.db import emails

log = logging.getLogger(__name__)

_STRENGTH = (BOUNCE, COMPLAINT_KIND, UNSUBSCRIBE_KIND, DELAY)


@dataclass(frozen=True)
class Result:
    state: str
    detail: str
    account_id: int | None = None
    message_id: str = ""


class ReportProcessor:
    def __init__(self, store: InboundStore, outcomes: Outcomes) -> None:
        self.store = store
        self.outcomes = outcomes

    async def process(self, report_id: int) -> str | None:
        """The report's new state; None when there was nothing to do (gone, done)."""
        report = await self.store.begin(report_id)
        if report is None:
            return None
        result = await self.judge(report.rcpt_to, report.raw)
        await self.store.finish(report_id, result.state, result.detail, result.account_id, result.message_id)
        log.info("inbound report %d: %s (%s)", report_id, result.state, result.detail)
        return result.state

    async def judge(self, rcpt_to: str, raw: bytes) -> Result:
        claim = self.store.tokens.read_address(rcpt_to)
        if claim is not None and claim.kind == UNSUBSCRIBE_TOKEN:
            # The token names the recipient by its index (-1, the whole email: its only
            # recipient), whatever the message says.
            address = await self._recipient(claim) if claim.recipient >= 0 else ""
            if claim.recipient >= 0 and not address:
                return Result(IGNORED, "mailto unsubscribe: no such email or recipient", claim.account_id,
                              claim.message_id)
            return await self._apply(claim, [Feedback(UNSUBSCRIBE_KIND, address, source="mailto")], "mailto unsubscribe")
        parsed = await asyncio.to_thread(parse, raw)  # seconds for a large report: not on the event loop
        if not parsed.source:
            return Result(UNPARSEABLE, parsed.problem, claim.account_id if claim else None,
                          claim.message_id if claim else "")
        if claim is None:
            claims = [c for c in map(self.store.tokens.read_address, parsed.return_addresses)
                      if c is not None and c.kind == BOUNCE_TOKEN]
            if not claims:
                return Result(IGNORED, f"{parsed.source} report without a genuine return path token")
            claim = claims[0]
        if not parsed.feedback:
            return Result(IGNORED, "; ".join(parsed.skipped)[:1000] or "nothing to apply", claim.account_id,
                          claim.message_id)
        return await self._apply(claim, list(parsed.feedback), f"{parsed.source} report")

    async def _apply(self, claim: Claim, feedback: list[Feedback], what: str) -> Result:
        applied: Applied = await self.outcomes.apply(claim.account_id, claim.message_id, feedback)
        reasons = "; ".join(f"{f.recipient or '?'}: {why}" for f, why in applied.ignored)
        if not applied.applied:
            return Result(IGNORED, f"{what}: {reasons or 'nothing applied'}"[:2000], claim.account_id, claim.message_id)
        kinds = {f.kind for f in applied.applied}
        state = next(k for k in _STRENGTH if k in kinds)
        done = ", ".join(f"{f.kind} {f.recipient or ''}".strip() for f in applied.applied)
        detail = f"{what}: {done}" + (f"; ignored {reasons}" if reasons else "")
        return Result(state, detail[:2000], claim.account_id, claim.message_id)

    async def _recipient(self, claim: Claim) -> str:
        """The address at the claim's recipient index; empty when there is none."""
        async with self.store.engine.connect() as conn:
            row = (await conn.execute(select(emails.c.recipients).where(
                emails.c.account_id == claim.account_id, emails.c.public_id == claim.message_id))).first()
        if row is None:
            return ""
        recipients = list(recipients_from_json(row.recipients))
        return recipients[claim.recipient] if 0 <= claim.recipient < len(recipients) else ""
