"""The webhook fan-out's SQL: events after the stored position become deliveries, one
per enabled endpoint of the event's account whose filter wants the event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.emails.model import EventRecord
from core.events.cursor import Position
from core.times import aware, utcnow
from core.webhooks.delivery_store import QUEUED
from core.webhooks.events import (
    event_body,
    parse_filter,
    payload_type,
    wants,
    webhook_id,
)
from core.webhooks.schema import (
    webhook_deliveries,
    webhook_dispatch_position,
    webhook_endpoints,
)
from core.webhooks.store import ENABLED


@dataclass(frozen=True)
class Scanned:
    """What one read of the log found: the events that may have deliveries (of accounts
    with an enabled endpoint) as (account id, event), how many events it went past, and
    the position after the last of them (None when there was nothing new)."""

    events: Sequence[tuple[int, EventRecord]]
    count: int
    through: Position | None


ReadEvents = Callable[[Position, int], Awaitable[Scanned]]


class FanOut:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def fan_out(self, read: ReadEvents, limit: int = 500) -> int:
        """Turn events after the stored position into deliveries for every enabled
        endpoint of their account whose filter wants them (and that existed when the
        event happened), and move the position past them, in one transaction. The
        position row is locked with SKIP LOCKED: another scheduler doing the same
        makes this one skip the round. Returns the number of events read."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(webhook_dispatch_position).where(webhook_dispatch_position.c.id == 1)
                    .with_for_update(skip_locked=True)
                )
            ).first()
            if row is None:
                if await conn.scalar(select(webhook_dispatch_position.c.id)) is not None:
                    return 0  # locked by another scheduler
                await conn.execute(insert(webhook_dispatch_position).values(id=1, last_txid=-1, last_event_id=0))
                return 0
            scanned = await read(Position(row.last_txid, row.last_event_id), limit)
            if scanned.through is None:
                return 0
            if scanned.events:
                await self._add_deliveries(conn, scanned.events)
            await conn.execute(
                update(webhook_dispatch_position).where(webhook_dispatch_position.c.id == 1)
                .values(last_txid=scanned.through.txid, last_event_id=scanned.through.id, updated_at=utcnow())
            )
        return scanned.count

    async def _add_deliveries(self, conn: AsyncConnection, batch: Sequence[tuple[int, EventRecord]]) -> None:
        accounts = {account_id for account_id, _ in batch}
        endpoints = (
            await conn.execute(
                select(webhook_endpoints.c.id, webhook_endpoints.c.account_id, webhook_endpoints.c.event_types,
                       webhook_endpoints.c.created_at)
                .where(webhook_endpoints.c.state == ENABLED, webhook_endpoints.c.account_id.in_(accounts))
            )
        ).all()
        if not endpoints:
            return
        now = utcnow()
        rows = []
        for account_id, event in batch:
            for endpoint in endpoints:
                if (endpoint.account_id == account_id and wants(parse_filter(endpoint.event_types), event.type)
                        and event.occurred_at >= aware(endpoint.created_at)):  # type: ignore[operator]
                    rows.append({
                        "endpoint_id": endpoint.id, "account_id": account_id, "webhook_id": webhook_id(event.id),
                        "event_id": event.id, "event_type": payload_type(event.type), "message_id": event.message_id,
                        "body": event_body(event), "status": QUEUED, "attempts": 0, "last_error": "",
                        "created_at": now, "updated_at": now, "next_attempt_at": now,
                    })
        if rows:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            await conn.execute(dialect.insert(webhook_deliveries).values(rows).on_conflict_do_nothing())
