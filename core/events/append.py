"""Appending to the event log: rows inserted in the writer's transaction, counted for
the metrics when it commits, and each account's streams woken (NOTIFY)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from core.emails.model import NewEvent
from core.events import log as event_log
from core.observability import metrics
from core.storage.db import events
from core.storage.recordset import recordset_insert, rows_json


async def add_events(
    conn: AsyncConnection, account_id: int, email_id: int, new: Sequence[NewEvent], now: datetime
) -> None:
    await append_events(conn, [(account_id, email_id, e) for e in new], now)


async def append_events(conn: AsyncConnection, new: Sequence[tuple[int, int, NewEvent]], now: datetime) -> None:
    """Insert (account id, email id, event) rows in one statement, count them for the
    metrics when the transaction commits, and wake each account's streams (NOTIFY)."""
    if not new:
        return
    rows = [event_row(account_id, email_id, e, now) for account_id, email_id, e in new]
    if conn.dialect.name == "postgresql":  # one fixed statement (core.storage.recordset)
        for row in rows:
            del row["occurred_at"]
        await conn.exec_driver_sql(_RECORDSET_INSERT, {"rows": rows_json(rows), "now": now})
    else:
        await conn.execute(insert(events), rows)
    metrics.note_events(conn, [e for _, _, e in new])
    for account_id in sorted({account_id for account_id, _, _ in new}):
        await event_log.notify(conn, account_id)


_COLUMNS = (("account_id", "bigint"), ("email_id", "bigint"), ("type", "text"), ("smtp_code", "integer"),
            ("smtp_message", "text"), ("detail", "text"), ("recipient", "text"))
_RECORDSET_INSERT = recordset_insert("events", _COLUMNS, fixed=(("occurred_at", "%(now)s"),))  # ids in append order


def event_row(account_id: int, email_id: int, e: NewEvent, now: datetime) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "email_id": email_id,
        "type": e.type.value,
        "occurred_at": now,
        "smtp_code": e.smtp_code,
        "smtp_message": e.smtp_message,
        "detail": e.detail,
        "recipient": e.recipient,
    }
