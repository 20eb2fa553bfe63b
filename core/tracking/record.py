"""Recording a hit: an OPENED or CLICKED event appended to the account's event log
(core.events.append, the path every feedback event takes, so StreamEvents and webhooks
see it with the same cursor guarantees).

`first` is exact, whatever the concurrency: the first hit of a kind for an (email,
recipient) inserts a row into tracking_firsts (primary key email, kind, recipient) in
the event's own transaction, and every later one finds it there. Machine hits count
too: the first open is the first fetch of the pixel, by a person or a proxy.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import EventType, NewEvent
from core.events.append import add_events
from core.storage.db import database_errors_as_unavailable, emails, tracking_firsts
from core.times import utcnow
from core.tracking.machine import detail
from core.tracking.tokens import OPEN, Claim

_EVENTS = {OPEN: EventType.OPENED}


def _insert_first(conn: object, row: dict[str, object]) -> object:
    if conn.dialect.name == "postgresql":  # type: ignore[attr-defined]
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(tracking_firsts).values(row).on_conflict_do_nothing().returning(tracking_firsts.c.email_id)


class HitRecorder:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record(self, claim: Claim, machine: str, user_agent: str) -> bool | None:
        """Append the event; whether it was the first of its kind for that recipient
        (None: no such email for the token's account)."""
        event_type = _EVENTS.get(claim.kind, EventType.CLICKED)
        async with database_errors_as_unavailable(), self.engine.begin() as conn:
            row = (await conn.execute(
                select(emails.c.id, emails.c.recipients)
                .where(emails.c.account_id == claim.account_id, emails.c.public_id == claim.message_id)
            )).first()
            if row is None:
                return None
            addresses = list(row.recipients or {})
            recipient = addresses[claim.recipient] if 0 <= claim.recipient < len(addresses) else ""
            inserted = await conn.execute(_insert_first(conn, {  # type: ignore[arg-type]
                "email_id": row.id, "kind": claim.kind, "recipient": recipient,
            }))
            first = inserted.first() is not None  # RETURNING: a row only when this hit inserted it
            event = NewEvent(event_type, detail=detail(first, machine, user_agent, claim.url), recipient=recipient)
            await add_events(conn, claim.account_id, row.id, [event], utcnow())
        return first
