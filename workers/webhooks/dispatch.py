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
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import EventRecord
from core.errors import Unavailable
from core.events import log as event_log
from core.events.cursor import Position
from core.storage.db import events
from core.times import utcnow
from core.webhooks.delivery_store import WebhookDeliveryStore
from core.webhooks.fanout import FanOut

log = logging.getLogger(__name__)

BATCH = 500
MAX_BATCHES_PER_ROUND = 20
PRUNE_EVERY = 600.0  # seconds


async def read_new_events(engine: AsyncEngine, position: Position, limit: int) -> list[tuple[int, EventRecord]]:
    """Every account's events after `position`, in log order, as (account id, event).

    The one place the fan-out reads the log: core.events.log.read orders by (txid, id)
    and holds back events of transactions still in flight, so no event is skipped
    when transactions commit out of order.
    """
    async with engine.connect() as conn:
        batch, _held_back = await event_log.read(conn, None, position, limit=limit)
        if not batch:
            return []
        ids = [e.id for e in batch]
        owners = dict((await conn.execute(select(events.c.id, events.c.account_id).where(events.c.id.in_(ids)))).all())
    return [(int(owners[e.id]), e) for e in batch]


class WebhookDispatcher:
    def __init__(self, engine: AsyncEngine, publish: Callable[[int], Awaitable[None]], *,
                 retention: timedelta = timedelta(days=30),
                 read: Callable[[AsyncEngine, Position, int], Awaitable[Sequence[tuple[int, EventRecord]]]] = read_new_events) -> None:
        self.engine = engine
        self.store = WebhookDeliveryStore(engine)
        self.fan_out = FanOut(engine)
        self.publish = publish
        self.retention = retention
        self.read = read
        self._last_prune = 0.0

    async def _read(self, position: Position, limit: int) -> Sequence[tuple[int, EventRecord]]:
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
