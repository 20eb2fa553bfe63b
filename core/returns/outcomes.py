"""What a receiver's feedback does to an email, in one transaction: events in the log
(so GetStatus, StreamEvents and webhooks see them in order, like every other event),
recipient states, and suppressions.

    bounce       permanent DSN: the recipient BOUNCED (status code, diagnostic), suppressed
    delay        transient DSN: a DELAYED event only
    complaint    ARF feedback report: a COMPLAINED event, suppressed
    unsubscribe  one-click POST or mailto: an UNSUBSCRIBED event, suppressed

Feedback is only ever applied to an email of the account the token names, and only for
one of that email's own recipients: a report naming anybody else changes nothing.
Applying the same feedback twice adds nothing the second time (replays, resent reports).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import EventType, NewEvent, RecipientState, Status, overall
from core.emails.reads import recipients_from_json, recipients_to_json
from core.events.append import add_events
from core.storage.db import emails, events
from core.suppressions.write import (
    COMPLAINT,
    HARD_BOUNCE,
    UNSUBSCRIBE,
    Entry,
    normalize,
    suppress,
)
from core.times import utcnow

log = logging.getLogger(__name__)

BOUNCE, DELAY, COMPLAINT_KIND, UNSUBSCRIBE_KIND = "bounce", "delay", "complaint", "unsubscribe"
_EVENTS = {BOUNCE: EventType.BOUNCED, DELAY: EventType.DELAYED, COMPLAINT_KIND: EventType.COMPLAINED,
           UNSUBSCRIBE_KIND: EventType.UNSUBSCRIBED}
PENDING_STATUSES = frozenset({Status.QUEUED, Status.SENDING, Status.DEFERRED, Status.SCHEDULED})
_SUPPRESSION = {BOUNCE: HARD_BOUNCE, COMPLAINT_KIND: COMPLAINT, UNSUBSCRIBE_KIND: UNSUBSCRIBE}


@dataclass(frozen=True)
class Feedback:
    kind: str  # bounce, delay, complaint or unsubscribe
    recipient: str = ""  # empty: the email's only recipient (refused when it has several)
    status: str = ""  # enhanced status code, e.g. "5.1.1"
    code: int | None = None  # the receiver's SMTP reply code, when the report gives it
    diagnostic: str = ""
    source: str = ""  # how it came back: "dsn", "arf", "heuristic", "one-click", "mailto"


@dataclass(frozen=True)
class Applied:
    found: bool  # the email exists for that account
    applied: list[Feedback]  # what changed something
    ignored: list[tuple[Feedback, str]]  # what did not, and why


class Outcomes:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def apply(self, account_id: int, message_id: str, feedback: Sequence[Feedback]) -> Applied:
        now = utcnow()
        applied: list[Feedback] = []
        ignored: list[tuple[Feedback, str]] = []
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(emails.c.id, emails.c.status, emails.c.recipients)
                    .where(emails.c.account_id == account_id, emails.c.public_id == message_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return Applied(False, [], [(f, "no such email for this account") for f in feedback])
            recipients = recipients_from_json(row.recipients)
            by_normal = {normalize(a): a for a in recipients}
            done = await self._already(conn, row.id)
            new_events: list[NewEvent] = []
            entries: list[Entry] = []
            for item in feedback:
                address = by_normal.get(normalize(item.recipient)) if item.recipient else (
                    next(iter(recipients)) if len(recipients) == 1 else None
                )
                if address is None:
                    ignored.append((item, "not a recipient of this email"))
                    continue
                event = _EVENTS[item.kind]
                if (event.value, address) in done:
                    ignored.append((item, "already recorded"))
                    continue
                done.add((event.value, address))
                text = " ".join(p for p in (item.status, item.diagnostic) if p)
                detail = f"{item.source or item.kind} report" + (f": {text}" if text else "")
                new_events.append(NewEvent(event, item.code, item.diagnostic[:1000], detail[:1000], recipient=address))
                if item.kind == BOUNCE:
                    recipients[address] = RecipientState(Status.BOUNCED, item.code, (item.diagnostic or item.status)[:1000])
                if item.kind in _SUPPRESSION:
                    entries.append(Entry(address, _SUPPRESSION[item.kind], text or item.kind, message_id))
                applied.append(item)
            if not new_events:
                return Applied(True, applied, ignored)
            values: dict[str, object] = {"recipients": recipients_to_json(recipients), "updated_at": now}
            if Status(row.status) not in PENDING_STATUSES and all(s.status not in PENDING_STATUSES for s in recipients.values()):
                values["status"] = overall(recipients).value
            await conn.execute(update(emails).where(emails.c.id == row.id).values(**values))
            await add_events(conn, account_id, row.id, new_events, now)
            await suppress(conn, account_id, entries, now)
        log.info("email %s: %d feedback applied, %d ignored", message_id, len(applied), len(ignored))
        return Applied(True, applied, ignored)

    async def _already(self, conn: object, email_id: int) -> set[tuple[str, str]]:
        """(event type, recipient) of the feedback events the email already has."""
        query = select(events.c.type, events.c.recipient).where(
            events.c.email_id == email_id, events.c.type.in_([e.value for e in _EVENTS.values()]),
        )
        return {(r.type, r.recipient) for r in await conn.execute(query)}  # type: ignore[attr-defined]
