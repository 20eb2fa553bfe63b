"""Reading an email back: its row and its events as an EmailRecord (GetStatus)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.emails.model import EmailRecord, RecipientState, Status
from core.events import log as event_log
from core.storage.db import emails, events
from core.times import aware


def recipients_from_json(data: dict[str, Any] | None) -> dict[str, RecipientState]:
    return {address: RecipientState.from_json(state) for address, state in (data or {}).items()}


def recipients_to_json(recipients: dict[str, RecipientState]) -> dict[str, Any]:
    return {address: state.to_json() for address, state in recipients.items()}


async def read_email(conn: AsyncConnection, account_id: int, message_id: str) -> EmailRecord | None:
    """The account's email with its events, oldest first; None if not the account's."""
    row = (
        await conn.execute(
            select(emails).where(emails.c.public_id == message_id, emails.c.account_id == account_id)
        )
    ).first()
    if row is None:
        return None
    event_rows = await conn.execute(
        select(*event_log._COLUMNS)
        .select_from(events.join(emails, emails.c.id == events.c.email_id))
        .where(events.c.email_id == row.id)
        .order_by(events.c.id)
    )
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
        events=[event_log.record(e) for e in event_rows],
    )
