"""The stats rollup: reads the event log after its saved position, in (txid, id)
order with the in-flight hold-back of core.events.log.scan (so no event is skipped when
transactions commit out of order), adds the events to the counter rows and moves the
position past them, in ONE transaction: a crash before the commit counts nothing, and
the next round reads the same events again. The position row is locked with SKIP
LOCKED, so of several schedulers one rolls up per round."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.emails.model import EventType
from core.events import log as event_log
from core.events.cursor import START, Position
from core.stats.tally import EventFacts, Tally, tally
from core.storage.db import email_tags, emails, events
from core.storage.recordset import recordset_insert, rows_json
from core.storage.stats_tables import STATS_METRICS, stats_daily, stats_failures, stats_hourly, stats_rollup_position
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
            scanned = await _read(conn, position, limit)
            if not scanned:
                return Rolled(0, 0, None)
            facts = await _facts(conn, scanned)
            counted = tally(facts)
            rows = await _write(conn, counted)
            through = Position(int(scanned[-1].txid), int(scanned[-1].id))
            newest = max(aware(r.occurred_at) for r in scanned)  # type: ignore[type-var]
            values: dict[str, Any] = {"last_txid": through.txid, "last_event_id": through.id, "updated_at": utcnow()}
            if newest is not None:
                values["last_occurred_at"] = newest
            await conn.execute(update(stats_rollup_position).where(stats_rollup_position.c.id == 1).values(**values))
            if before_commit is not None:
                await before_commit()
        return Rolled(len(scanned), rows, through, newest)


async def _read(conn: AsyncConnection, position: Position, limit: int) -> list[Any]:
    """The next events in log order (core.events.log's hold-back), each with its email's
    template and variant (account-level events, with no email, have none)."""
    query = select(
        events.c.id, events.c.txid, events.c.email_id, events.c.account_id, events.c.type, events.c.occurred_at,
        events.c.smtp_code, events.c.detail, events.c.recipient, emails.c.template_id, emails.c.template_variant,
    ).select_from(events.outerjoin(emails, emails.c.id == events.c.email_id))
    return list((await conn.execute(event_log.in_log_order_after(conn, query, position, limit))).all())


async def _facts(conn: AsyncConnection, rows: Sequence[Any]) -> list[EventFacts]:
    """The counted events of `rows` with their emails' tags."""
    counted = [r for r in rows if r.type in _COUNTED]
    email_ids = sorted({r.email_id for r in counted if r.email_id is not None})
    tags: dict[int, list[str]] = {}
    if email_ids:
        for email_id, tag in await conn.execute(
            select(email_tags.c.email_id, email_tags.c.tag).where(email_tags.c.email_id.in_(email_ids))
        ):
            tags.setdefault(email_id, []).append(tag)
    return [
        EventFacts(int(r.account_id), _TYPES[r.type], aware(r.occurred_at), r.smtp_code, r.detail or "",  # type: ignore[arg-type]
                   r.recipient or "", tags.get(r.email_id, ()), r.template_id or "", r.template_variant or "")
        for r in counted
    ]


# Types that add to some counter (core.stats.mapping); the others only move the position.
_COUNTED = frozenset(t.value for t in EventType) - {"sending", "scheduled", "canceled", "webhook_disabled"}


_KEY = ("account_id", "dimension", "hour", "key", "variant")
_KEY_TYPES = (("account_id", "bigint"), ("dimension", "text"), ("hour", "bigint"), ("key", "text"), ("variant", "text"))
_FAILURE_KEY = (*_KEY, "kind", "smtp_code", "domain")
# PostgreSQL: one fixed statement per table, the rows as one JSON parameter (core.storage.recordset).


def _counts_upsert(table: str) -> str:
    return (
        recordset_insert(table, (*_KEY_TYPES, *((name, "bigint") for name in STATS_METRICS)))
        + f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
        + ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name in STATS_METRICS)
    )


_HOURLY_UPSERT, _DAILY_UPSERT = _counts_upsert("stats_hourly"), _counts_upsert("stats_daily")
_FAILURES_UPSERT = (
    recordset_insert("stats_failures", (*_KEY_TYPES, ("kind", "text"), ("smtp_code", "integer"), ("domain", "text"),
                                        ("count", "bigint")))
    + f" ON CONFLICT ({', '.join(_FAILURE_KEY)}) DO UPDATE SET count = stats_failures.count + excluded.count"
)


async def _upsert(conn: AsyncConnection, table: Any, keys: Sequence[str], add: Sequence[str], pg_sql: str,
                  values: list[dict[str, Any]]) -> None:
    if conn.dialect.name == "postgresql":
        await conn.exec_driver_sql(pg_sql, {"rows": rows_json(values)})
        return
    stmt = sqlite.insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={n: table.c[n] + stmt.excluded[n] for n in add})
    await conn.execute(stmt, values)


async def _write(conn: AsyncConnection, counted: Tally) -> int:
    """Add the tallies to their rows (insert, or add to the row already there), in key
    order (concurrent rollups would take row locks in the same order)."""
    days: dict[tuple[int, str, int, str, str], Counter[str]] = {}
    for (a, d, h, k, v), c in counted.counts.items():
        days.setdefault((a, d, h // 24 * 24, k, v), Counter()).update(c)
    hourly, daily = (
        [{"account_id": a, "dimension": d, "hour": h, "key": k, "variant": v, **{n: c[n] for n in STATS_METRICS}}
         for (a, d, h, k, v), c in sorted(rows.items())]
        for rows in (counted.counts, days)
    )
    failures = [
        {"account_id": a, "dimension": d, "hour": h, "key": k, "variant": v, "kind": kind, "smtp_code": code,
         "domain": domain, "count": n}
        for (a, d, h, k, v, kind, code, domain), n in sorted(counted.failures.items())
    ]
    if hourly:
        await _upsert(conn, stats_hourly, _KEY, STATS_METRICS, _HOURLY_UPSERT, hourly)
        await _upsert(conn, stats_daily, _KEY, STATS_METRICS, _DAILY_UPSERT, daily)
    if failures:
        await _upsert(conn, stats_failures, _FAILURE_KEY, ("count",), _FAILURES_UPSERT, failures)
    return len(hourly) + len(daily) + len(failures)
