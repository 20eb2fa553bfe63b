"""Webhook fan-out, run by the scheduler each round: events written since the stored
position become one delivery per enabled endpoint of the event's account whose filter
wants them; then every delivery that is due (new, retry, abandoned) is published.

Several schedulers may run: the position row is locked (SKIP LOCKED) for the whole
fan-out, so one of them does it per round; deliveries are unique per (endpoint,
event), so even a replayed batch adds nothing twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.errors import Unavailable
from core.events import log as event_log
from core.events.cursor import Position
from core.times import utcnow
from core.webhooks.delivery_store import WebhookDeliveryStore
from core.webhooks.fanout import FanOut, Scanned
from core.webhooks.schema import webhook_endpoints
from core.webhooks.store import ENABLED

log = logging.getLogger(__name__)

BATCH = 500
MAX_BATCHES_PER_ROUND = 20
PRUNE_EVERY = 600.0  # seconds


async def read_new_events(engine: AsyncEngine, position: Position, limit: int) -> Scanned:
    """Every account's events after `position`, in log order; the whole records only of
    those whose account has an enabled endpoint. Most events have no webhook to go to:
    reading each one with its email cost the database about as much as storing it.

    The one place the fan-out reads the log: core.events.log orders by (txid, id) and
    holds back events of transactions still in flight, so no event is skipped when
    transactions commit out of order.
    """
    async with engine.connect() as conn:
        rows = await event_log.scan(conn, position, limit)
        if not rows:
            return Scanned((), 0, None)
        hooked = set(await conn.scalars(
            select(webhook_endpoints.c.account_id).where(webhook_endpoints.c.state == ENABLED).distinct()
        ))
        owners = {row.id: int(row.account_id) for row in rows if row.account_id in hooked}
        wanted = await event_log.records(conn, list(owners))
    return Scanned([(owners[e.id], e) for e in wanted], len(rows), Position(int(rows[-1].txid), int(rows[-1].id)))


class WebhookDispatcher:
    def __init__(self, engine: AsyncEngine, publish: Callable[[int], Awaitable[None]], *,
                 retention: timedelta = timedelta(days=30),
                 read: Callable[[AsyncEngine, Position, int], Awaitable[Scanned]] = read_new_events) -> None:
        self.engine = engine
        self.store = WebhookDeliveryStore(engine)
        self.fan_out = FanOut(engine)
        self.publish = publish
        self.retention = retention
        self.read = read
        self._last_prune = 0.0

    async def _read(self, position: Position, limit: int) -> Scanned:
        return await self.read(self.engine, position, limit)

    async def round(self) -> tuple[int, int]:
        """Fan out new events, then publish due deliveries; (events read, published)."""
        read = 0
        for _ in range(MAX_BATCHES_PER_ROUND):
            count = await self.fan_out.fan_out(self._read, BATCH)
            read += count
            if count < BATCH:
                break
        try:
            published = await self.store.publish_due(self.publish)
        except Unavailable:
            log.warning("broker unavailable; will publish due webhooks when it is back")
            published = 0
        if published:
            log.info("published %d due webhook deliveries", published)
        if time.monotonic() - self._last_prune > PRUNE_EVERY:
            self._last_prune = time.monotonic()
            pruned = await self.store.prune(utcnow() - self.retention)
            if pruned:
                log.info("retention: pruned %d finished webhook deliveries", pruned)
        return read, published
