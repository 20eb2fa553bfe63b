"""Retention: events and message bodies are kept for configurable periods, then pruned.

Inbound reports (raw bounces and complaints, which quote the original message) follow
the body retention once parsed; a report still waiting to be parsed is never pruned.

Events are pruned only once the stats rollup has counted them (their log position is
at or before its own): the counts are the history that outlives the events.

Pruned events leave a mark (the highest log position removed) so a stream resumed
from an older cursor answers OUT_OF_RANGE instead of silently skipping; pruned
bodies leave the email's metadata, recipients and status, with content_pruned_at set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import TERMINAL
from core.returns.schema import inbound_reports
from core.storage.db import emails, events, retention
from core.storage.stats_tables import stats_rollup_position
from core.times import utcnow

BATCH = 5000
BODY_FIELDS = ("text_body", "html_body", "attachments", "raw")  # raw: an SMTP-submitted message


@dataclass(frozen=True)
class Pruned:
    events: int
    bodies: int
    reports: int = 0


def _counted_by_stats() -> object:
    """Events at or before the stats rollup's position (none before its first round)."""
    position = select(stats_rollup_position.c.last_txid, stats_rollup_position.c.last_event_id).where(
        stats_rollup_position.c.id == 1
    )
    txid = position.with_only_columns(stats_rollup_position.c.last_txid).scalar_subquery()
    event_id = position.with_only_columns(stats_rollup_position.c.last_event_id).scalar_subquery()
    return or_(events.c.txid < txid, and_(events.c.txid == txid, events.c.id <= event_id))


async def prune_events(engine: AsyncEngine, older_than: datetime) -> int:
    total = 0
    while True:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(events.c.id, events.c.txid)
                    .where(events.c.occurred_at < older_than, _counted_by_stats())
                    .limit(BATCH)
                )
            ).all()
            if not rows:
                return total
            top = max((r.txid, r.id) for r in rows)
            current = (await conn.execute(select(retention.c.events_pruned_txid, retention.c.events_pruned_id))).first()
            if current is None or top > (current[0], current[1]):
                await conn.execute(
                    update(retention).where(retention.c.id == 1).values(events_pruned_txid=top[0], events_pruned_id=top[1])
                )
            await conn.execute(delete(events).where(events.c.id.in_([r.id for r in rows])))
            total += len(rows)


async def prune_bodies(engine: AsyncEngine, older_than: datetime) -> int:
    """Strip bodies and attachments of finished emails accepted before `older_than`."""
    total = 0
    finished = [s.value for s in TERMINAL]
    while True:
        async with engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(emails.c.id, emails.c.content)
                    .where(
                        emails.c.created_at < older_than,
                        emails.c.content_pruned_at.is_(None),
                        emails.c.status.in_(finished),
                    )
                    .limit(500)
                )
            ).all()
            if not rows:
                return total
            now = utcnow()
            for row in rows:
                content = {k: v for k, v in dict(row.content).items() if k not in BODY_FIELDS}
                content.update(text_body="", html_body="", attachments=[])
                await conn.execute(
                    update(emails).where(emails.c.id == row.id).values(content=content, content_pruned_at=now)
                )
            total += len(rows)


async def prune_reports(engine: AsyncEngine, older_than: datetime) -> int:
    """Delete inbound reports received before `older_than` whose parsing is done."""
    total = 0
    while True:
        async with engine.begin() as conn:
            ids = (
                await conn.scalars(
                    select(inbound_reports.c.id)
                    .where(inbound_reports.c.received_at < older_than, inbound_reports.c.state != "received")
                    .limit(BATCH)
                )
            ).all()
            if not ids:
                return total
            await conn.execute(delete(inbound_reports).where(inbound_reports.c.id.in_(ids)))
            total += len(ids)


async def prune(engine: AsyncEngine, events_before: datetime, bodies_before: datetime) -> Pruned:
    return Pruned(
        await prune_events(engine, events_before),
        await prune_bodies(engine, bodies_before),
        await prune_reports(engine, bodies_before),
    )


async def oldest_event(engine: AsyncEngine) -> datetime | None:
    async with engine.connect() as conn:
        return await conn.scalar(select(func.min(events.c.occurred_at)))
