"""The stats rollup's tick, run by the scheduler each round (workers/scheduler.py):
count the events written since the last round (core/stats/rollup.py), a batch per
transaction, and keep the rollup's Prometheus metrics. The lag gauges are also set by
the worker's queue sampler (workers/metrics.py), since `postwire scheduler` serves no
metrics endpoint of its own; in the embedded mode the server's endpoint shows them."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from core.observability.metrics import metric
from core.stats.position import lag
from core.stats.rollup import StatsRollup

log = logging.getLogger(__name__)

BATCH = 2000
MAX_BATCHES_PER_ROUND = 50
ROUND_BUDGET = 1.0  # seconds: a long backlog (an upgrade) must not hold up the scheduler's other work
LAG_EVERY = 5.0  # seconds between lag readings

ROLLED_EVENTS = metric(Counter, "postwire_stats_rollup_events_total",
                       "Events of the log the stats rollup has read (counted once each).")
ROLLED_ROWS = metric(Counter, "postwire_stats_rollup_rows_total",
                     "Counter rows the stats rollup has written (inserted or added to).")
LAG_EVENTS = metric(Gauge, "postwire_stats_rollup_lag_events",
                    "Events written to the log and not yet counted by the stats rollup (up to 100,000).")
LAG_SECONDS = metric(Gauge, "postwire_stats_rollup_lag_seconds",
                     "Seconds since the oldest event not yet counted by the stats rollup happened (0: none).")


async def sample_lag(engine: AsyncEngine) -> None:
    behind = await lag(engine)
    LAG_EVENTS.set(behind.events)
    LAG_SECONDS.set(behind.seconds)


class StatsRollupTick:
    def __init__(self, engine: AsyncEngine, batch: int = BATCH) -> None:
        self.engine = engine
        self.rollup = StatsRollup(engine)
        self.batch = batch
        self._last_lag = 0.0

    async def round(self) -> int:
        """Roll up until the log is drained (or MAX_BATCHES_PER_ROUND, or ROUND_BUDGET
        seconds); events read."""
        read = 0
        started = time.monotonic()
        for _ in range(MAX_BATCHES_PER_ROUND):
            rolled = await self.rollup.roll(self.batch)
            read += rolled.events
            ROLLED_EVENTS.inc(rolled.events)
            ROLLED_ROWS.inc(rolled.rows)
            if rolled.events < self.batch or time.monotonic() - started > ROUND_BUDGET:
                break
        if time.monotonic() - self._last_lag > LAG_EVERY:
            self._last_lag = time.monotonic()
            await sample_lag(self.engine)
        return read
