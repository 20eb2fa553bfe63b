"""SQL for the delivery side: claiming emails, recording attempts and outcomes. The
scheduler's queries (what is due, expired claims) are core.delivery.due."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.delivery import batch_sql
from core.delivery.due import DueWork
from core.emails.model import AttemptResult, ClaimedEmail, EventType, NewEvent, Status
from core.emails.reads import recipients_from_json, recipients_to_json
from core.events.append import add_events, append_events
from core.storage.db import emails, suppressions
from core.storage.group_commit import GroupCommit
from core.suppressions.write import HARD_BOUNCE, Entry, normalize, suppress
from core.times import aware, utcnow

PENDING_RECIPIENT = (Status.QUEUED, Status.DEFERRED, Status.SCHEDULED)


def _claimed(row: Any) -> ClaimedEmail:
    return ClaimedEmail(
        id=row.id,
        message_id=row.public_id,
        account_id=row.account_id,
        attempts=row.attempts,
        content=row.content,
        created_at=aware(row.created_at),  # type: ignore[arg-type]
        expires_at=aware(row.expires_at),
        recipients=recipients_from_json(row.recipients),
        send_at=aware(row.send_at),
        test_mode=bool(row.test_mode),
    )


def _pending(claimed: ClaimedEmail) -> list[str]:
    return [a for a, s in claimed.recipients.items() if s.status in PENDING_RECIPIENT]


class DeliveryStore(DueWork):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._claims: GroupCommit[tuple[int, timedelta], ClaimedEmail | None] = GroupCommit(self._claim_many, parallel=1)
        self._sendings: GroupCommit[ClaimedEmail, None] = GroupCommit(self._record_sending_many, parallel=1)
        self._finishes: GroupCommit[tuple[ClaimedEmail, AttemptResult], bool] = GroupCommit(self._finish_many, parallel=1)

    async def close(self) -> None:
        await self.engine.dispose()

    # Worker -----------------------------------------------------------------------------

    async def claim(self, email_id: int, lease: timedelta) -> ClaimedEmail | None:
        """Atomically take a QUEUED (or due) email for one attempt (status SENDING,
        attempts + 1, held until now + lease). None otherwise: done, deferred until
        later, or held by another worker, so a redelivered or duplicate message does
        nothing.

        The same transaction looks up which pending recipients are suppressed;
        concurrent claims in this process share one transaction (group commit)."""
        return await self._claims.submit((email_id, lease))

    async def _claim_many(self, requests: Sequence[tuple[int, timedelta]]) -> list[ClaimedEmail | None]:
        now = utcnow()
        ids = list(dict.fromkeys(email_id for email_id, _ in requests))
        lease = max(lease for _, lease in requests)
        postgres = self.engine.dialect.name == "postgresql"  # one statement text for any batch size
        async with self.engine.begin() as conn:
            rows = await batch_sql.claim_rows(conn, ids, now, now + lease) if postgres else (
                await conn.execute(
                    update(emails)
                    .where(
                        emails.c.id.in_(ids),
                        or_(
                            emails.c.status == Status.QUEUED.value,
                            # Due but its publisher has not committed yet: on PostgreSQL the
                            # row is then locked, so this waits for that commit.
                            and_(
                                emails.c.status.in_([Status.DEFERRED.value, Status.SCHEDULED.value]),
                                emails.c.next_attempt_at <= now,
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
                        emails.c.created_at,
                        emails.c.expires_at,
                        emails.c.recipients,
                        emails.c.send_at,
                        emails.c.test_mode,
                    )
                )
            ).all()
            claimed = {row.id: _claimed(row) for row in rows}
            suppressed = await self._suppressed_pairs(
                conn, {(c.account_id, normalize(a)) for c in claimed.values() for a in _pending(c)}
            )
            for email_id, c in claimed.items():
                if c.recipients:  # an old row without per-recipient state: the worker looks up
                    found = {a: suppressed[(c.account_id, normalize(a))] for a in _pending(c)
                             if (c.account_id, normalize(a)) in suppressed}
                    claimed[email_id] = dataclasses.replace(c, suppressed=found)
        results: list[ClaimedEmail | None] = []
        for email_id, _ in requests:  # a duplicate id in the batch gets nothing: one claim each
            results.append(claimed.pop(email_id, None))
        return results

    async def _suppressed_pairs(self, conn: AsyncConnection, pairs: set[tuple[int, str]]) -> dict[tuple[int, str], str]:
        if not pairs:
            return {}
        if self.engine.dialect.name == "postgresql":
            return await batch_sql.suppressed_pairs(conn, pairs)
        rows = await conn.execute(
            select(suppressions.c.account_id, suppressions.c.address, suppressions.c.reason).where(
                tuple_(suppressions.c.account_id, suppressions.c.address).in_(sorted(pairs))
            )
        )
        return {(r.account_id, r.address): r.reason for r in rows}

    async def suppressed(self, account_id: int, addresses: list[str]) -> dict[str, str]:
        """Which of the addresses are on the account's suppression list, with the reason."""
        if not addresses:
            return {}
        lowered = {normalize(a): a for a in addresses}
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(suppressions.c.address, suppressions.c.reason).where(
                    suppressions.c.account_id == account_id, suppressions.c.address.in_(list(lowered))
                )
            )
            return {lowered[r.address]: r.reason for r in rows}

    async def record_sending(self, claimed: ClaimedEmail) -> None:
        """The SENDING event, once the attempt holds its domain slots (group commit)."""
        await self._sendings.submit(claimed)

    async def _record_sending_many(self, claims: Sequence[ClaimedEmail]) -> list[None]:
        async with self.engine.begin() as conn:
            await append_events(conn, [(c.account_id, c.id, NewEvent(EventType.SENDING)) for c in claims], utcnow())
        return [None] * len(claims)

    async def release(self, claimed: ClaimedEmail, delay: timedelta) -> None:
        """Give the claim back without counting an attempt (e.g. a domain at its limit)."""
        now = utcnow()
        async with self.engine.begin() as conn:
            await conn.execute(
                update(emails)
                .where(emails.c.id == claimed.id, emails.c.status == Status.SENDING.value)
                .values(
                    status=Status.QUEUED.value,
                    attempts=emails.c.attempts - 1,
                    updated_at=now,
                    locked_until=None,
                    published_at=None,
                    next_attempt_at=now + delay,
                )
            )

    async def finish_attempt(self, claimed: ClaimedEmail, result: AttemptResult) -> bool:
        """Record an attempt: status, recipients, events and suppressions, atomically.

        Only while the claim is still this attempt's (SENDING, same attempt number):
        a worker whose lease ran out and was released must not overwrite the outcome
        of the attempt that took over. False, recording nothing, in that case.
        Concurrent attempts in this process share one transaction (group commit)."""
        return await self._finishes.submit((claimed, result))

    async def _finish_many(self, items: Sequence[tuple[ClaimedEmail, AttemptResult]]) -> list[bool]:
        now = utcnow()
        recorded: list[bool] = []
        async with self.engine.begin() as conn:
            batched = self.engine.dialect.name == "postgresql" and len({c.id for c, _ in items}) == len(items)
            if batched:  # one statement for the batch
                recorded = await batch_sql.finish_rows(conn, items, now)
            for claimed, result in () if batched else items:
                values: dict[str, Any] = {
                    "status": result.status.value,
                    "updated_at": now,
                    "locked_until": None,
                    "recipients": recipients_to_json(result.recipients),
                    "last_error": result.last_error,
                    "next_attempt_at": result.next_attempt_at,
                }
                if result.status is Status.SENT:
                    values["sent_at"] = now
                if result.status is Status.DEFERRED:
                    values["published_at"] = None  # the scheduler publishes it when due
                changed = await conn.execute(
                    update(emails)
                    .where(
                        emails.c.id == claimed.id,
                        emails.c.status == Status.SENDING.value,
                        emails.c.attempts == claimed.attempts,
                    )
                    .values(**values)
                )
                recorded.append(bool(changed.rowcount))
            done = [(c, r) for (c, r), ok in zip(items, recorded) if ok]
            await append_events(conn, [(c.account_id, c.id, e) for c, r in done for e in r.events], now)
            for c, r in done:
                if r.suppress:
                    await self._suppress(conn, c.account_id, r.suppress, now)
        return recorded

    async def _suppress(self, conn: AsyncConnection, account_id: int, reasons: dict[str, str], now: datetime) -> None:
        await suppress(conn, account_id, [Entry(a, HARD_BOUNCE, r) for a, r in reasons.items()], now)

    async def fail_if_not_final(self, email_id: int, detail: str, keep: Sequence[Status] = ()) -> bool:
        """Mark a not-yet-final email (nor in a `keep` status) FAILED with an event.
        True if it changed."""
        now = utcnow()
        final = [Status.SENT.value, Status.BOUNCED.value, Status.FAILED.value, Status.SUPPRESSED.value, Status.CANCELED.value]
        final += [s.value for s in keep]
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
            await add_events(conn, row.account_id, email_id, [NewEvent(EventType.FAILED, detail=detail)], now)
        return True
