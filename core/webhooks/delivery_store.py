"""SQL for delivering webhooks: publishing what is due, claiming a delivery, and
recording an attempt's outcome (which may disable the endpoint, with a
WEBHOOK_DISABLED event for the account). The fan-out is core/webhooks/fanout.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.emails.model import EventType
from core.events import log as event_log
from core.storage.db import events
from core.times import aware, utcnow
from core.webhooks.schema import webhook_attempts, webhook_deliveries, webhook_endpoints
from core.webhooks.store import DISABLED, ENABLED

# Delivery statuses. queued: published (or about to be), claimable; retrying: claimable
# from next_attempt_at; delivering: claimed until locked_until.
QUEUED, RETRYING, DELIVERING, DELIVERED, FAILED = "queued", "retrying", "delivering", "delivered", "failed"


@dataclass(frozen=True)
class ClaimedDelivery:
    id: int
    account_id: int
    endpoint_id: int
    endpoint_public_id: str
    endpoint_state: str
    url: str
    webhook_id: str
    body: str
    attempts: int
    created_at: datetime
    sealed_secrets: tuple[str, ...]  # current first, then the previous one while it is valid


@dataclass(frozen=True)
class AttemptOutcome:
    """One attempt and what follows: `status` (delivered, retrying or failed) with
    `next_attempt_at` when retrying; `success` clears the endpoint's failing run;
    `disable` (a reason) disables it now, `disable_after` once failing that long."""

    status: str
    status_code: int | None
    latency_ms: int
    error: str
    next_attempt_at: datetime | None = None
    success: bool = False
    disable: str = ""
    disable_after: timedelta | None = None


class WebhookDeliveryStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # Scheduler ---------------------------------------------------------------------------

    async def publish_due(self, publish: Callable[[int], Awaitable[None]], limit: int = 500) -> int:
        """Publish unpublished deliveries that are due (new ones, retries whose time came,
        and ones whose worker died: lease expired). Rows are taken with SKIP LOCKED and
        published before their row commits (a crash means a duplicate, never a loss)."""
        now = utcnow()
        d = webhook_deliveries.c
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(d.id, d.status)
                    .where(or_(
                        and_(d.published_at.is_(None), d.status.in_([QUEUED, RETRYING]), d.next_attempt_at <= now),
                        and_(d.status == DELIVERING, d.locked_until < now),
                    ))
                    .order_by(d.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                await publish(row.id)
                await conn.execute(
                    update(webhook_deliveries).where(d.id == row.id, d.status == row.status)
                    .values(status=QUEUED, published_at=now, locked_until=None, next_attempt_at=now, updated_at=now)
                )
        return len(rows)

    async def prune(self, older_than: datetime, batch: int = 5000) -> int:
        """Delete finished deliveries (and their attempts) last changed before `older_than`."""
        d = webhook_deliveries.c
        async with self.engine.begin() as conn:
            ids = (await conn.execute(
                select(d.id).where(d.status.in_([DELIVERED, FAILED]), d.updated_at < older_than).limit(batch)
            )).scalars().all()
            if ids:
                await conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(ids)))
                await conn.execute(delete(webhook_deliveries).where(d.id.in_(ids)))
            return len(ids)

    # Worker ------------------------------------------------------------------------------

    async def claim(self, delivery_id: int, lease: timedelta) -> ClaimedDelivery | None:
        """Atomically take a queued (or due) delivery for one attempt; None if it is done,
        not due, or held by another worker."""
        now = utcnow()
        d = webhook_deliveries.c
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(webhook_deliveries)
                    .where(d.id == delivery_id, or_(
                        d.status == QUEUED,
                        and_(d.status == RETRYING, d.next_attempt_at <= now),
                        and_(d.status == DELIVERING, d.locked_until < now),
                    ))
                    .values(status=DELIVERING, attempts=d.attempts + 1, locked_until=now + lease, updated_at=now)
                    .returning(d.id, d.account_id, d.endpoint_id, d.webhook_id, d.body, d.attempts, d.created_at)
                )
            ).first()
            if row is None:
                return None
            e = (await conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == row.endpoint_id))).one()
        previous = e.previous_secret_expires_at
        sealed = (e.secret,) + ((e.previous_secret,) if e.previous_secret and previous and aware(previous) > now else ())  # type: ignore[operator]
        return ClaimedDelivery(
            id=row.id, account_id=row.account_id, endpoint_id=row.endpoint_id, endpoint_public_id=e.public_id,
            endpoint_state=e.state, url=e.url, webhook_id=row.webhook_id, body=row.body, attempts=row.attempts,
            created_at=aware(row.created_at), sealed_secrets=sealed,  # type: ignore[arg-type]
        )

    async def release(self, claimed: ClaimedDelivery, delay: timedelta) -> None:
        """The attempt crashed: let it be retried after `delay`."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == claimed.id, webhook_deliveries.c.status == DELIVERING)
                .values(status=RETRYING, locked_until=None, published_at=None, next_attempt_at=utcnow() + delay)
            )

    async def fail(self, delivery_id: int, reason: str) -> bool:
        """End a delivery that is not done yet as failed, without an attempt."""
        d = webhook_deliveries.c
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(webhook_deliveries).where(d.id == delivery_id, d.status.not_in([DELIVERED, FAILED]))
                .values(status=FAILED, last_error=reason[:1000], locked_until=None, next_attempt_at=None,
                        updated_at=utcnow())
            )
            return bool(result.rowcount)

    async def finish(self, claimed: ClaimedDelivery, outcome: AttemptOutcome) -> str:
        """Record the attempt, the delivery's new state and the endpoint's health in one
        transaction. Returns the attempt's outcome (`endpoint_disabled` when this attempt
        disabled the endpoint)."""
        now = utcnow()
        status, next_at, error = outcome.status, outcome.next_attempt_at, outcome.error
        async with self.engine.begin() as conn:
            # Lock the endpoint first (the order DeleteWebhookEndpoint's cascade takes).
            still_there = await conn.scalar(
                select(webhook_endpoints.c.id).where(webhook_endpoints.c.id == claimed.endpoint_id).with_for_update()
            )
            if still_there is None:  # the endpoint was deleted meanwhile
                return "failed"
            reason = await self._endpoint_health(conn, claimed, outcome, now)
            attempt_outcome = "endpoint_disabled" if reason else {DELIVERED: "delivered", RETRYING: "retrying"}.get(status, "failed")
            if reason and status == RETRYING:
                status, next_at = FAILED, None
            await conn.execute(insert(webhook_attempts).values(
                delivery_id=claimed.id, endpoint_id=claimed.endpoint_id, attempt=claimed.attempts, attempted_at=now,
                status_code=outcome.status_code, latency_ms=outcome.latency_ms, error=error[:1000],
                outcome=attempt_outcome,
            ))
            await conn.execute(
                update(webhook_deliveries).where(webhook_deliveries.c.id == claimed.id)
                .values(status=status, next_attempt_at=next_at, published_at=None, locked_until=None,
                        last_error=(reason or error)[:1000], updated_at=now)
            )
        return attempt_outcome

    async def _endpoint_health(self, conn: AsyncConnection, claimed: ClaimedDelivery, outcome: AttemptOutcome,
                               now: datetime) -> str:
        """Update the endpoint's failing run; disable it when due. Returns the reason
        if this attempt disabled it."""
        e = webhook_endpoints.c
        if outcome.success:
            await conn.execute(update(webhook_endpoints).where(e.id == claimed.endpoint_id).values(failing_since=None))
            return ""
        row = (
            await conn.execute(
                update(webhook_endpoints).where(e.id == claimed.endpoint_id)
                .values(failing_since=func.coalesce(e.failing_since, now))
                .returning(e.failing_since, e.state, e.public_id, e.url)
            )
        ).first()
        if row is None or row.state != ENABLED:
            return ""
        reason = outcome.disable
        since = aware(row.failing_since)
        if not reason and outcome.disable_after is not None and since is not None and now - since >= outcome.disable_after:
            reason = f"every attempt failed since {since.isoformat()} (last: {outcome.error})"
        if not reason:
            return ""
        await conn.execute(
            update(webhook_endpoints).where(e.id == claimed.endpoint_id)
            .values(state=DISABLED, disabled_reason=reason[:1000], disabled_at=now, updated_at=now)
        )
        await conn.execute(insert(events).values(
            account_id=claimed.account_id, email_id=None, type=EventType.WEBHOOK_DISABLED.value, occurred_at=now,
            smtp_code=None, smtp_message="", detail=f"webhook endpoint {row.public_id} disabled: {reason}"[:2000],
            recipient="",
        ))
        await event_log.notify(conn, claimed.account_id)
        return reason

