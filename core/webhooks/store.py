"""SQL for the webhook API: endpoints of an account, their attempts, test deliveries.

Every read and write is scoped to an account: another account's endpoint is not found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import EventType
from core.times import aware, utcnow
from core.webhooks.events import format_filter, parse_filter
from core.webhooks.schema import webhook_attempts, webhook_deliveries, webhook_endpoints

ENABLED, DISABLED = "enabled", "disabled"


@dataclass(frozen=True)
class EndpointRecord:
    id: int
    public_id: str
    account_id: int
    url: str
    description: str
    event_types: frozenset[EventType]
    state: str
    disabled_reason: str
    disabled_at: datetime | None
    failing_since: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AttemptRecord:
    id: int
    webhook_id: str
    event_type: str
    message_id: str
    attempt: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str
    outcome: str


@dataclass(frozen=True)
class EndpointChanges:
    """What to change; None leaves a field as it is."""

    url: str | None = None
    description: str | None = None
    event_types: frozenset[EventType] | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def columns(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.values)
        if self.url is not None:
            out["url"] = self.url
        if self.description is not None:
            out["description"] = self.description
        if self.event_types is not None:
            out["event_types"] = format_filter(self.event_types)
        return out


def endpoint_record(row: Any) -> EndpointRecord:
    return EndpointRecord(
        id=row.id,
        public_id=row.public_id,
        account_id=row.account_id,
        url=row.url,
        description=row.description,
        event_types=parse_filter(row.event_types),
        state=row.state,
        disabled_reason=row.disabled_reason,
        disabled_at=aware(row.disabled_at),
        failing_since=aware(row.failing_since),
        previous_secret_expires_at=aware(row.previous_secret_expires_at),
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        updated_at=aware(row.updated_at),  # type: ignore[arg-type]
    )


class WebhookStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await self.engine.dispose()

    async def create(self, account_id: int, public_id: str, url: str, description: str,
                     event_types: frozenset[EventType], sealed_secret: str) -> EndpointRecord:
        now = utcnow()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    insert(webhook_endpoints)
                    .values(
                        public_id=public_id, account_id=account_id, url=url, description=description,
                        event_types=format_filter(event_types), secret=sealed_secret, state=ENABLED,
                        disabled_reason="", created_at=now, updated_at=now,
                    )
                    .returning(webhook_endpoints)
                )
            ).one()
        return endpoint_record(row)

    async def list(self, account_id: int) -> list[EndpointRecord]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(webhook_endpoints).where(webhook_endpoints.c.account_id == account_id).order_by(webhook_endpoints.c.id)
            )
            return [endpoint_record(r) for r in rows]

    async def get(self, account_id: int, public_id: str) -> EndpointRecord | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(webhook_endpoints).where(
                        webhook_endpoints.c.account_id == account_id, webhook_endpoints.c.public_id == public_id
                    )
                )
            ).first()
        return endpoint_record(row) if row else None

    async def update(self, account_id: int, public_id: str, changes: EndpointChanges) -> EndpointRecord | None:
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(webhook_endpoints)
                    .where(webhook_endpoints.c.account_id == account_id, webhook_endpoints.c.public_id == public_id)
                    .values(**changes.columns(), updated_at=utcnow())
                    .returning(webhook_endpoints)
                )
            ).first()
        return endpoint_record(row) if row else None

    async def sealed_secret(self, endpoint_id: int) -> str:
        async with self.engine.connect() as conn:
            return str(await conn.scalar(select(webhook_endpoints.c.secret).where(webhook_endpoints.c.id == endpoint_id)))

    async def delete(self, account_id: int, public_id: str) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(webhook_endpoints).where(
                    webhook_endpoints.c.account_id == account_id, webhook_endpoints.c.public_id == public_id
                )
            )
            return bool(result.rowcount)

    async def add_delivery(self, endpoint: EndpointRecord, webhook_id: str, event_type: str, body: str,
                           publish_after: datetime) -> int:
        """A delivery outside the fan-out (a test event); queued, published by the caller
        or, after `publish_after`, by the scheduler."""
        now = utcnow()
        async with self.engine.begin() as conn:
            return int(
                (
                    await conn.execute(
                        insert(webhook_deliveries)
                        .values(
                            endpoint_id=endpoint.id, account_id=endpoint.account_id, webhook_id=webhook_id,
                            event_type=event_type, message_id="", body=body, status="queued", attempts=0,
                            last_error="", created_at=now, updated_at=now, next_attempt_at=publish_after,
                        )
                        .returning(webhook_deliveries.c.id)
                    )
                ).scalar_one()
            )

    async def mark_published(self, delivery_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.published_at.is_(None))
                .values(published_at=utcnow())
            )

    async def attempts(self, endpoint_id: int, *, before_id: int | None, webhook_id: str, limit: int) -> list[AttemptRecord]:
        query = (
            select(
                webhook_attempts, webhook_deliveries.c.webhook_id, webhook_deliveries.c.event_type,
                webhook_deliveries.c.message_id,
            )
            .join(webhook_deliveries, webhook_deliveries.c.id == webhook_attempts.c.delivery_id)
            .where(webhook_attempts.c.endpoint_id == endpoint_id)
            .order_by(webhook_attempts.c.id.desc())
            .limit(limit)
        )
        if before_id is not None:
            query = query.where(webhook_attempts.c.id < before_id)
        if webhook_id:
            query = query.where(webhook_deliveries.c.webhook_id == webhook_id)
        async with self.engine.connect() as conn:
            return [
                AttemptRecord(
                    id=r.id, webhook_id=r.webhook_id, event_type=r.event_type, message_id=r.message_id,
                    attempt=r.attempt, attempted_at=aware(r.attempted_at),  # type: ignore[arg-type]
                    status_code=r.status_code, latency_ms=r.latency_ms, error=r.error, outcome=r.outcome,
                )
                for r in await conn.execute(query)
            ]
