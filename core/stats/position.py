"""Where the rollup is: its position in the log, and how far behind the log it is
(the lag operators watch: postwire_stats_rollup_lag_events / _seconds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.events import log as event_log
from core.events.cursor import START, Position
from core.storage.db import events
from core.storage.stats_tables import stats_rollup_position
from core.times import aware, utcnow

LAG_CAP = 100_000  # events behind are counted up to this many (cheap to sample; more says enough)


@dataclass(frozen=True)
class Lag:
    events: int  # events written but not yet counted (at most LAG_CAP)
    seconds: float  # since the oldest of them happened (0 when none)


@dataclass(frozen=True)
class RollupState:
    position: Position
    last_occurred_at: datetime | None  # when the newest event counted happened


async def state(engine: AsyncEngine) -> RollupState:
    async with engine.connect() as conn:
        row = (await conn.execute(select(stats_rollup_position).where(stats_rollup_position.c.id == 1))).first()
    if row is None:
        return RollupState(START, None)
    return RollupState(Position(row.last_txid, row.last_event_id), aware(row.last_occurred_at))


async def lag(engine: AsyncEngine) -> Lag:
    """How many events lie after the rollup's position, and how old the first one is."""
    position = (await state(engine)).position
    async with engine.connect() as conn:
        behind = select(events.c.id).where(event_log.after_position(position)).limit(LAG_CAP).subquery()
        count = int(await conn.scalar(select(func.count()).select_from(behind)) or 0)
        oldest = aware(await conn.scalar(event_log.in_log_order_after(conn, select(events.c.occurred_at), position, 1)))
    seconds = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
    return Lag(count, seconds)
