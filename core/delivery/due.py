"""The scheduler's queries: publish what is due, publish again what was lost, release
the claims of dead workers, purge old idempotency keys. Rows are taken with SKIP
LOCKED, so several schedulers share the work. DeliveryStore (core.delivery.store)
offers these beside the worker's queries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import and_, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import EventType, NewEvent, Status
from core.emails.store import IDEMPOTENCY_TTL
from core.events.append import add_events
from core.storage.db import emails, idempotency_keys
from core.times import utcnow

PUBLISHABLE = (Status.QUEUED.value, Status.DEFERRED.value, Status.SCHEDULED.value)


class DueWork:
    engine: AsyncEngine

    async def publish_due(self, publish: Callable[[int], Awaitable[None]], limit: int = 500) -> int:
        """Publish emails that are due and unpublished: deferred ones whose retry time
        came, scheduled ones whose send_at came, and accepted ones the server did not
        publish (broker down, crash). Rows are locked with SKIP LOCKED, so several
        schedulers share the work; each is published before its row commits, so a crash
        in between means a duplicate message (harmless: the claim is atomic), never a
        lost one."""
        now = utcnow()
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(emails.c.id, emails.c.account_id, emails.c.status)
                    .where(
                        emails.c.published_at.is_(None),
                        emails.c.status.in_(PUBLISHABLE),
                        emails.c.next_attempt_at <= now,
                    )
                    .order_by(emails.c.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await publish(row.id)
                changed = await conn.execute(
                    update(emails)
                    .where(emails.c.id == row.id, emails.c.status == row.status)  # unless a worker took it
                    .values(status=Status.QUEUED.value, published_at=now, updated_at=now)
                )
                if changed.rowcount and row.status == Status.SCHEDULED.value:
                    await add_events(conn, row.account_id, row.id, [NewEvent(EventType.QUEUED)], now)
        return len(rows)

    async def republish_stale(self, older_than: timedelta, limit: int = 500) -> int:
        """QUEUED emails published long ago but never claimed lost their message (e.g. a
        worker gave up on it while the database was down): publish them again. A message
        that was merely slow to arrive becomes a duplicate, which the claim ignores."""
        now = utcnow()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(emails)
                .where(
                    emails.c.status == Status.QUEUED.value,
                    emails.c.published_at < now - older_than,
                    emails.c.id.in_(
                        select(emails.c.id)
                        .where(emails.c.status == Status.QUEUED.value, emails.c.published_at < now - older_than)
                        .limit(limit)
                        .scalar_subquery()
                    ),
                )
                .values(published_at=None, next_attempt_at=now)
            )
            return int(result.rowcount or 0)

    async def release_expired_claims(self, limit: int = 500) -> int:
        """SENDING emails whose worker's lease ran out (it died mid-send) go back to the
        queue for another attempt, with a DEFERRED event saying why."""
        now = utcnow()
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(emails.c.id, emails.c.account_id)
                    .where(emails.c.status == Status.SENDING.value, emails.c.locked_until < now)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await conn.execute(
                    update(emails)
                    .where(and_(emails.c.id == row.id, emails.c.status == Status.SENDING.value))
                    .values(
                        status=Status.QUEUED.value,
                        locked_until=None,
                        published_at=None,
                        next_attempt_at=now,
                        updated_at=now,
                    )
                )
                await add_events(
                    conn, row.account_id, row.id,
                    [NewEvent(EventType.DEFERRED, detail="delivery attempt abandoned (worker lease expired); retrying")],
                    now,
                )
        return len(rows)

    async def purge_idempotency_keys(self) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(idempotency_keys).where(idempotency_keys.c.created_at < utcnow() - IDEMPOTENCY_TTL)
            )
            return int(result.rowcount or 0)
