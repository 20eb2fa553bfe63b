"""Reading an email back: its row and its events as an EmailRecord (GetStatus).

One statement reads both (the row joined to its events), so they come from one
snapshot: an event committed between two separate reads can no longer show a status
that its events contradict. The statement is built once; `get_email` runs it on an
autocommit connection, so the read costs one round trip (no BEGIN, no ROLLBACK).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.emails.model import EmailRecord, EventRecord, EventType, RecipientState, Status
from core.storage.db import emails, events
from core.times import aware


def recipients_from_json(data: dict[str, Any] | None) -> dict[str, RecipientState]:
    return {address: RecipientState.from_json(state) for address, state in (data or {}).items()}


def recipients_to_json(recipients: dict[str, RecipientState]) -> dict[str, Any]:
    return {address: state.to_json() for address, state in recipients.items()}


_EMAIL_COLUMNS = ("id", "public_id", "account_id", "status", "attempts", "last_error", "created_at", "updated_at",
                  "sent_at", "send_at", "next_attempt_at", "expires_at", "recipients", "content_pruned_at",
                  "template_id", "template_version", "template_variant")
_EVENT_COLUMNS = ("id", "txid", "type", "occurred_at", "smtp_code", "smtp_message", "detail", "recipient")
# The email's row once per event (or once, with NULL event columns, if it has none),
# found by the unique public_id, its events by the email_id index, oldest first.
_READ = (
    select(*(emails.c[name] for name in _EMAIL_COLUMNS),
           *(events.c[name].label(f"event_{name}") for name in _EVENT_COLUMNS))
    .select_from(emails.outerjoin(events, events.c.email_id == emails.c.id))
    .where(emails.c.public_id == bindparam("message_id"), emails.c.account_id == bindparam("account_id"))
    .order_by(events.c.id)
)


async def get_email(engine: AsyncEngine, account_id: int, message_id: str) -> EmailRecord | None:
    """read_email on a connection of its own, in autocommit mode: one round trip."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        return await read_email(conn, account_id, message_id)


async def read_email(conn: AsyncConnection, account_id: int, message_id: str) -> EmailRecord | None:
    """The account's email with its events, oldest first; None if not the account's."""
    rows = (await conn.execute(_READ, {"message_id": message_id, "account_id": account_id})).all()
    if not rows:
        return None
    row = rows[0]
    return EmailRecord(
        id=row.id,
        message_id=row.public_id,
        account_id=row.account_id,
        status=Status(row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        updated_at=aware(row.updated_at),  # type: ignore[arg-type]
        sent_at=aware(row.sent_at),
        send_at=aware(row.send_at),
        next_attempt_at=aware(row.next_attempt_at)
        if row.status in (Status.DEFERRED.value, Status.SCHEDULED.value)
        else None,
        expires_at=aware(row.expires_at),
        recipients=recipients_from_json(row.recipients),
        content_pruned_at=aware(row.content_pruned_at),
        events=[_event(e) for e in rows if e.event_id is not None],
        template_id=row.template_id or "",
        template_version=row.template_version or 0,
        template_variant=row.template_variant or "",
    )


def _event(row: Any) -> EventRecord:
    return EventRecord(
        id=row.event_id,
        message_id=row.public_id,
        type=EventType(row.event_type),
        occurred_at=aware(row.event_occurred_at),  # type: ignore[arg-type]
        smtp_code=row.event_smtp_code,
        smtp_message=row.event_smtp_message,
        detail=row.event_detail,
        recipient=row.event_recipient,
        txid=row.event_txid,
    )
