"""Reading the event log exactly, whatever order transactions commit in.

Event ids come from a sequence, so a transaction that took a lower id can commit
after one that took a higher id. A reader that handed out "everything up to id N"
would then skip the late one forever. So on PostgreSQL every event records its
writing transaction's id (txid), events are ordered by (txid, id), and a reader only
returns events whose txid is below the oldest transaction still in flight
(pg_snapshot_xmin): every transaction below that line has finished, so nothing can
ever appear behind a position already handed out. Events of younger transactions
are held back until the older ones finish (usually milliseconds).

SQLite has a single writer that assigns ids under its write lock: commit order is id
order, and txid is 0.

Commits that add events also send NOTIFY postwire_events (payload: the account id),
so servers learn of new events without polling in a tight loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.emails.model import EventRecord, EventType
from core.events.cursor import START, Position
from core.storage.db import email_tags, emails, events, retention
from core.times import aware

CHANNEL = "postwire_events"

_HORIZON = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")

_COLUMNS = (
    events.c.id,
    events.c.txid,
    func.coalesce(emails.c.public_id, "").label("public_id"),
    events.c.type,
    events.c.occurred_at,
    events.c.smtp_code,
    events.c.smtp_message,
    events.c.detail,
    events.c.recipient,
)


_WITH_EMAILS = events.outerjoin(emails, emails.c.id == events.c.email_id)  # for each event's message id


def record(row: Any) -> EventRecord:
    return EventRecord(
        id=row.id,
        message_id=row.public_id,
        type=EventType(row.type),
        occurred_at=aware(row.occurred_at),  # type: ignore[arg-type]
        smtp_code=row.smtp_code,
        smtp_message=row.smtp_message,
        detail=row.detail,
        recipient=row.recipient,
        txid=row.txid,
    )


def _after(position: Position) -> Any:
    # The leading `txid >= ...` is implied by the rest; it lets the (txid, id) indexes
    # start at the position instead of scanning the log from its beginning.
    return and_(
        events.c.txid >= position.txid,
        or_(events.c.txid > position.txid, and_(events.c.txid == position.txid, events.c.id > position.id)),
    )


async def read(
    conn: AsyncConnection,
    account_id: int | None,
    after: Position,
    *,
    message_ids: Sequence[str] = (),
    types: Sequence[EventType] = (),
    tags: Sequence[str] = (),
    limit: int = 500,
) -> tuple[list[EventRecord], int | None]:
    """Deliverable events after `after`, in log order, and the txid of the oldest
    event held back behind a transaction still in flight (None when none is): it
    becomes readable once every transaction older than it has ended."""
    postgres = conn.dialect.name == "postgresql"
    query = (
        select(*_COLUMNS)
        .select_from(_WITH_EMAILS)
        .where(_after(after))
        .order_by(events.c.txid, events.c.id)
        .limit(limit)
    )
    if account_id is not None:
        query = query.where(events.c.account_id == account_id)
    if postgres:
        query = query.where(events.c.txid < _HORIZON)
    if message_ids:
        query = query.where(emails.c.public_id.in_(list(message_ids)))
    if types:
        query = query.where(events.c.type.in_([t.value for t in types]))
    if tags:
        tagged = select(email_tags.c.email_id).where(email_tags.c.tag.in_(list(tags)))
        if account_id is not None:
            tagged = tagged.where(email_tags.c.account_id == account_id)
        query = query.where(events.c.email_id.in_(tagged))
    batch = [record(row) for row in await conn.execute(query)]
    held_back: int | None = None
    if postgres and len(batch) < limit:
        last = Position(batch[-1].txid, batch[-1].id) if batch else after
        waiting = select(func.min(events.c.txid)).where(_after(last), events.c.txid >= _HORIZON)
        if account_id is not None:
            waiting = waiting.where(events.c.account_id == account_id)
        held_back = await conn.scalar(waiting)
    return batch, held_back


async def scan(conn: AsyncConnection, after: Position, limit: int = 500) -> list[Any]:
    """(id, txid, account_id) of every account's next deliverable events after `after`,
    in log order, as `read` would return them: the narrow rows alone, for a reader that
    wants few of them (the webhook fan-out, for the accounts that have endpoints)."""
    query = in_log_order_after(conn, select(events.c.id, events.c.txid, events.c.account_id), after, limit)
    return list((await conn.execute(query)).all())


def in_log_order_after(conn: AsyncConnection, query: Select[Any], after: Position, limit: int) -> Select[Any]:
    """`query` (over events, with any joins) narrowed to the deliverable events after
    `after`, in log order, as `scan` and `read` take them: for a reader that needs other
    columns (the stats rollup reads each event with its email's template)."""
    query = query.where(_after(after)).order_by(events.c.txid, events.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.where(events.c.txid < _HORIZON)
    return query


def after_position(position: Position) -> Any:
    """The condition "after `position` in log order" (held-back events included)."""
    return _after(position)


async def records(conn: AsyncConnection, ids: Sequence[int]) -> list[EventRecord]:
    """The events with these ids, in log order."""
    if not ids:
        return []
    query = (
        select(*_COLUMNS)
        .select_from(_WITH_EMAILS)
        .where(events.c.id.in_(list(ids)))
        .order_by(events.c.txid, events.c.id)
    )
    return [record(row) for row in await conn.execute(query)]


async def head(conn: AsyncConnection, account_id: int) -> Position:
    """The position of the account's newest deliverable event (a `from_now` start)."""
    query = select(events.c.txid, events.c.id).where(events.c.account_id == account_id)
    if conn.dialect.name == "postgresql":
        query = query.where(events.c.txid < _HORIZON)
    row = (await conn.execute(query.order_by(events.c.txid.desc(), events.c.id.desc()).limit(1))).first()
    return Position(row.txid, row.id) if row else START


async def position_of(conn: AsyncConnection, event_id: int) -> Position:
    """A legacy (id-only) cursor's position."""
    txid = await conn.scalar(select(events.c.txid).where(events.c.id == event_id))
    return Position(int(txid), event_id) if txid is not None else Position(0, event_id)


async def pruned_through(conn: AsyncConnection) -> Position:
    row = (await conn.execute(select(retention.c.events_pruned_txid, retention.c.events_pruned_id))).first()
    return Position(row[0], row[1]) if row else START


async def notify(conn: AsyncConnection, account_id: int) -> None:
    """Wake the streams of this account in every server (sent at commit)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_notify(CHANNEL, str(account_id))))
