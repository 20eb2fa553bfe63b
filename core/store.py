"""All SQL lives here. Every read is scoped to an account; writes are one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.db import accounts, api_keys, emails, events
from core.model import (
    ClaimedEmail,
    EmailRecord,
    EventRecord,
    EventType,
    Outcome,
    Status,
)

CLAIMABLE = (Status.QUEUED.value, Status.DEFERRED.value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time stored is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _event(row: Any) -> EventRecord:
    return EventRecord(
        id=row.id,
        message_id=row.public_id,
        type=EventType(row.type),
        occurred_at=_aware(row.occurred_at),  # type: ignore[arg-type]
        smtp_code=row.smtp_code,
        smtp_message=row.smtp_message,
        detail=row.detail,
    )


_EVENT_COLUMNS = (
    events.c.id,
    emails.c.public_id,
    events.c.type,
    events.c.occurred_at,
    events.c.smtp_code,
    events.c.smtp_message,
    events.c.detail,
)


class Store:
    """Persistence for accounts, keys, emails and their events."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await self.engine.dispose()

    # Accounts and keys -------------------------------------------------------------

    async def create_account(self, name: str) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(accounts).values(name=name, created_at=utcnow()).returning(accounts.c.id)
            )
            return int(result.scalar_one())

    async def find_or_create_account(self, name: str) -> int:
        async with self.engine.connect() as conn:
            found = await conn.scalar(
                select(accounts.c.id).where(accounts.c.name == name).order_by(accounts.c.id)
            )
        return int(found) if found is not None else await self.create_account(name)

    async def add_api_key(self, account_id: int, name: str, prefix: str, key_hash: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(api_keys).values(
                    account_id=account_id,
                    name=name,
                    prefix=prefix,
                    key_hash=key_hash,
                    created_at=utcnow(),
                )
            )

    async def find_api_key(self, prefix: str) -> tuple[int, str] | None:
        """(account_id, key_hash) of the live key with this prefix, if any."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(api_keys.c.account_id, api_keys.c.key_hash).where(
                        api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None)
                    )
                )
            ).first()
        return (int(row.account_id), str(row.key_hash)) if row else None

    # Emails -------------------------------------------------------------------------

    async def accept_email(self, account_id: int, message_id: str, content: dict[str, object]) -> int:
        """Store a new email and its `queued` event in one transaction; returns its id."""
        now = utcnow()
        async with self.engine.begin() as conn:
            email_id = int(
                (
                    await conn.execute(
                        insert(emails)
                        .values(
                            public_id=message_id,
                            account_id=account_id,
                            status=Status.QUEUED.value,
                            content=content,
                            attempts=0,
                            last_error="",
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(emails.c.id)
                    )
                ).scalar_one()
            )
            await self._add_event(conn, account_id, email_id, Outcome(Status.QUEUED, EventType.QUEUED), now)
        return email_id

    async def mark_published(self, email_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(emails).where(emails.c.id == email_id).values(published_at=utcnow())
            )

    async def get_email(self, account_id: int, message_id: str) -> EmailRecord | None:
        """The account's email with its events, oldest first; None if not the account's."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(emails).where(
                        emails.c.public_id == message_id, emails.c.account_id == account_id
                    )
                )
            ).first()
            if row is None:
                return None
            event_rows = await conn.execute(
                select(*_EVENT_COLUMNS)
                .join(emails, emails.c.id == events.c.email_id)
                .where(events.c.email_id == row.id)
                .order_by(events.c.id)
            )
            return EmailRecord(
                id=row.id,
                message_id=row.public_id,
                account_id=row.account_id,
                status=Status(row.status),
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=_aware(row.created_at),  # type: ignore[arg-type]
                updated_at=_aware(row.updated_at),  # type: ignore[arg-type]
                sent_at=_aware(row.sent_at),
                events=[_event(e) for e in event_rows],
            )

    async def list_events(
        self,
        account_id: int,
        *,
        after_id: int = 0,
        message_ids: Sequence[str] = (),
        types: Sequence[EventType] = (),
        limit: int = 500,
    ) -> list[EventRecord]:
        """The account's events after `after_id`, oldest first, filtered."""
        query = (
            select(*_EVENT_COLUMNS)
            .join(emails, emails.c.id == events.c.email_id)
            .where(events.c.account_id == account_id, events.c.id > after_id)
            .order_by(events.c.id)
            .limit(limit)
        )
        if message_ids:
            query = query.where(emails.c.public_id.in_(list(message_ids)))
        if types:
            query = query.where(events.c.type.in_([t.value for t in types]))
        async with self.engine.connect() as conn:
            return [_event(row) for row in await conn.execute(query)]

    # Delivery -----------------------------------------------------------------------

    async def claim(self, email_id: int, lease: timedelta) -> ClaimedEmail | None:
        """Atomically take a queued/deferred email (or one whose lease ran out) for one
        attempt: status `sending`, attempts + 1, a `sending` event. None when the email
        is not claimable (already done, or another worker holds it)."""
        now = utcnow()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(emails)
                    .where(
                        emails.c.id == email_id,
                        or_(
                            emails.c.status.in_(CLAIMABLE),
                            and_(
                                emails.c.status == Status.SENDING.value,
                                emails.c.locked_until < now,
                            ),
                        ),
                    )
                    .values(
                        status=Status.SENDING.value,
                        attempts=emails.c.attempts + 1,
                        updated_at=now,
                        locked_until=now + lease,
                    )
                    .returning(
                        emails.c.id,
                        emails.c.public_id,
                        emails.c.account_id,
                        emails.c.attempts,
                        emails.c.content,
                    )
                )
            ).first()
            if row is None:
                return None
            await self._add_event(
                conn, row.account_id, row.id, Outcome(Status.SENDING, EventType.SENDING), now
            )
        return ClaimedEmail(
            id=row.id,
            message_id=row.public_id,
            account_id=row.account_id,
            attempts=row.attempts,
            content=row.content,
        )

    async def record_outcome(self, claimed: ClaimedEmail, outcome: Outcome) -> None:
        """Record an attempt's result as the email's status and one event."""
        now = utcnow()
        values: dict[str, object] = {
            "status": outcome.status.value,
            "updated_at": now,
            "locked_until": None,
        }
        if outcome.status is Status.SENT:
            values["sent_at"] = now
        else:
            values["last_error"] = outcome.detail or outcome.smtp_message
        async with self.engine.begin() as conn:
            await conn.execute(update(emails).where(emails.c.id == claimed.id).values(**values))
            await self._add_event(conn, claimed.account_id, claimed.id, outcome, now)

    async def fail_if_not_final(self, email_id: int, detail: str) -> bool:
        """Mark a not-yet-final email FAILED (retries exhausted). True if it changed."""
        now = utcnow()
        final = [s.value for s in (Status.SENT, Status.BOUNCED, Status.FAILED)]
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(emails)
                    .where(emails.c.id == email_id, emails.c.status.not_in(final))
                    .values(status=Status.FAILED.value, updated_at=now, last_error=detail, locked_until=None)
                    .returning(emails.c.account_id)
                )
            ).first()
            if row is None:
                return False
            await self._add_event(
                conn, row.account_id, email_id, Outcome(Status.FAILED, EventType.FAILED, detail=detail), now
            )
        return True

    async def find_stranded(self, unpublished_for: timedelta, limit: int = 500) -> list[int]:
        """Emails accepted but never published, or whose `sending` lease ran out."""
        now = utcnow()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(emails.c.id)
                .where(
                    or_(
                        and_(
                            emails.c.status == Status.QUEUED.value,
                            emails.c.published_at.is_(None),
                            emails.c.created_at < now - unpublished_for,
                        ),
                        and_(emails.c.status == Status.SENDING.value, emails.c.locked_until < now),
                    )
                )
                .order_by(emails.c.id)
                .limit(limit)
            )
            return [int(r.id) for r in rows]

    @staticmethod
    async def _add_event(
        conn: AsyncConnection, account_id: int, email_id: int, outcome: Outcome, now: datetime
    ) -> None:
        await conn.execute(
            insert(events).values(
                account_id=account_id,
                email_id=email_id,
                type=outcome.event.value,
                occurred_at=now,
                smtp_code=outcome.smtp_code,
                smtp_message=outcome.smtp_message,
                detail=outcome.detail,
            )
        )
