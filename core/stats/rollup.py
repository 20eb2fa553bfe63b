"""The stats rollup: reads the event log after its saved position, in (txid, id)
order with the in-flight hold-back of core.events.log.scan (so no event is skipped when
transactions commit out of order), adds the events to the counter rows and moves the
position past them, in ONE transaction: a crash before the commit counts nothing, and
the next round reads the same events again. The position row is locked with SKIP
LOCKED, so of several schedulers one rolls up per round."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.emails.model import EventType
from core.events import log as event_log
from core.events.cursor import START, Position
from core.stats.tally import EventFacts, Tally, tally
from core.storage.db import (
    STATS_METRICS,
    email_tags,
    emails,
    events,
    stats_failures,
    stats_hourly,
    stats_rollup_position,
)
from core.times import aware, utcnow

_TYPES = {t.value: t for t in EventType}


@dataclass(frozen=True)
class Rolled:
    """One round: events read (counted or not), counter rows written, the position after."""

    events: int
    rows: int
    through: Position | None
    last_occurred_at: datetime | None = None


class StatsRollup:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def roll(self, limit: int = 2000, *, before_commit: Callable[[], Awaitable[None]] | None = None) -> Rolled:
        """Count the next `limit` events of the log (every account) and move the position
        past them, in one transaction. `before_commit` (tests) runs after the writes."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(stats_rollup_position).where(stats_rollup_position.c.id == 1).with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                if await conn.scalar(select(stats_rollup_position.c.id)) is not None:
                    return Rolled(0, 0, None)  # another scheduler is rolling up
                await conn.execute(insert(stats_rollup_position).values(id=1, last_txid=START.txid, last_event_id=START.id))
                position = START
            else:
                position = Position(row.last_txid, row.last_event_id)
            scanned = await event_log.scan(conn, position, limit)
            if not scanned:
                return Rolled(0, 0, None)
            facts = await _facts(conn, [r.id for r in scanned])
            counted = tally(facts)
            rows = await _write(conn, counted)
            through = Position(int(scanned[-1].txid), int(scanned[-1].id))
            newest = max((f.occurred_at for f in facts), default=None)
            values: dict[str, Any] = {"last_txid": through.txid, "last_event_id": through.id, "updated_at": utcnow()}
            if newest is not None:
                values["last_occurred_at"] = newest
            await conn.execute(update(stats_rollup_position).where(stats_rollup_position.c.id == 1).values(**values))
            if before_commit is not None:
                await before_commit()
        return Rolled(len(scanned), rows, through, newest)


async def _facts(conn: AsyncConnection, ids: Sequence[int]) -> list[EventFacts]:
    """The events with these ids and their emails' tags and template (account-level
    events, with no email, have none)."""
    query = (
        select(events.c.email_id, events.c.account_id, events.c.type, events.c.occurred_at, events.c.smtp_code,
               events.c.detail, events.c.recipient, emails.c.template_id, emails.c.template_variant)
        .select_from(events.outerjoin(emails, emails.c.id == events.c.email_id))
        .where(events.c.id.in_(list(ids)))
    )
    rows = (await conn.execute(query)).all()
    email_ids = sorted({r.email_id for r in rows if r.email_id is not None and r.type in _COUNTED})
    tags: dict[int, list[str]] = {}
    if email_ids:
        for email_id, tag in await conn.execute(
            select(email_tags.c.email_id, email_tags.c.tag).where(email_tags.c.email_id.in_(email_ids))
        ):
            tags.setdefault(email_id, []).append(tag)
    return [
        EventFacts(
            account_id=int(r.account_id), type=_TYPES[r.type], occurred_at=aware(r.occurred_at),  # type: ignore[arg-type]
            smtp_code=r.smtp_code, detail=r.detail or "", recipient=r.recipient or "",
            tags=tags.get(r.email_id, ()), template_id=r.template_id or "", template_variant=r.template_variant or "",
        )
        for r in rows
        if r.type in _TYPES
    ]


_COUNTED = frozenset(t.value for t in EventType) - {"sending", "scheduled", "canceled", "webhook_disabled"}


def _dialect_insert(conn: AsyncConnection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


async def _write(conn: AsyncConnection, counted: Tally) -> int:
    """Add the tallies to their rows (insert, or add to the row already there)."""
    make = _dialect_insert(conn)
    rows = 0
    if counted.counts:
        stmt = make(stats_hourly)
        stmt = stmt.on_conflict_do_update(
            index_elements=["account_id", "dimension", "hour", "key", "variant"],
            set_={name: stats_hourly.c[name] + stmt.excluded[name] for name in STATS_METRICS},
        )
        values = [
            {"account_id": a, "dimension": d, "hour": h, "key": k, "variant": v, **{n: c[n] for n in STATS_METRICS}}
            for (a, d, h, k, v), c in sorted(counted.counts.items())
        ]
        await conn.execute(stmt, values)
        rows += len(values)
    if counted.failures:
        stmt = make(stats_failures)
        stmt = stmt.on_conflict_do_update(
            index_elements=["account_id", "dimension", "hour", "key", "variant", "kind", "smtp_code", "domain"],
            set_={"count": stats_failures.c.count + stmt.excluded.count},
        )
        values = [
            {"account_id": a, "dimension": d, "hour": h, "key": k, "variant": v, "kind": kind, "smtp_code": code,
             "domain": domain, "count": n}
            for (a, d, h, k, v, kind, code, domain), n in sorted(counted.failures.items())
        ]
        await conn.execute(stmt, values)
        rows += len(values)
    return rows
