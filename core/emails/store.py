"""SQL for the API side: accounts, keys, accepting emails, reading them back.

Every read is scoped to an account; every write is one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, insert, select, text, tuple_, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.emails.insert_rows import insert_emails
from core.emails.model import EmailRecord, EventType, NewEvent, RecipientState, Status
from core.emails.reads import read_email, recipients_to_json
from core.emails.search_terms import insert_terms, term_rows
from core.errors import AlreadyExists, FailedPrecondition, NotFound
from core.events.append import add_events, append_events
from core.storage import commit_outcome
from core.storage.db import email_tags, emails, idempotency_keys
from core.templates.model import TemplateUse
from core.times import utcnow

IDEMPOTENCY_TTL = timedelta(hours=24)
# Untouched since acceptance: a row a worker claimed and gave back (a busy domain) is
# QUEUED and unpublished too, and must stay so (see Store.mark_published).
_MARK_PUBLISHED = text(
    "UPDATE emails SET published_at = :now WHERE id = ANY(CAST(:ids AS bigint[])) AND status = :queued"
    " AND published_at IS NULL AND updated_at = created_at"
)


@dataclass(frozen=True)
class NewEmail:
    """An email to store; `publish_after` is when the scheduler publishes it if the
    accepting server has not (a grace period, or `send_at` for scheduled ones)."""

    message_id: str
    content: dict[str, object]
    recipients: list[str]
    status: Status
    publish_after: datetime
    send_at: datetime | None = None
    expires_at: datetime | None = None
    idempotency_key: str = ""
    fingerprint: str = ""
    test_mode: bool = False
    template: TemplateUse | None = None  # rendered from a template: which one, which version and variant


@dataclass(frozen=True)
class Accepted:
    email_id: int
    message_id: str
    status: Status
    replayed: bool = False  # an idempotent replay: nothing new was stored


def _email_row(account_id: int, new: NewEmail) -> dict[str, Any]:
    """The columns core.emails.insert_rows takes (it adds the creation time)."""
    pending = Status.SCHEDULED if new.status is Status.SCHEDULED else Status.QUEUED
    return {
        "public_id": new.message_id,
        "account_id": account_id,
        "status": new.status.value,
        "content": new.content,
        "next_attempt_at": new.publish_after,
        "send_at": new.send_at,
        "expires_at": new.expires_at,
        "recipients": recipients_to_json({r: RecipientState(pending) for r in new.recipients}),
        "test_mode": new.test_mode,
        "template_id": new.template.template_id if new.template else None,
        "template_version": new.template.version if new.template else None,
        "template_variant": (new.template.variant or None) if new.template else None,
    }


def _first_event(new: NewEmail) -> NewEvent:
    if new.status is Status.SCHEDULED and new.send_at:
        return NewEvent(EventType.SCHEDULED, detail=f"send at {new.send_at.isoformat()}")
    return NewEvent(EventType.QUEUED)


def _insert_ignoring_conflicts(conn: AsyncConnection, table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the connection's dialect."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    return dialect_insert(table).on_conflict_do_nothing()


class Store:
    """Persistence used by the API: accounts, keys, emails and their events."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def close(self) -> None:
        await self.engine.dispose()

    # Emails -------------------------------------------------------------------------

    async def accept_email(self, account_id: int, new: NewEmail) -> Accepted:
        """Store one email; see accept_many."""
        result = (await self.accept_many([(account_id, new)]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def accept_many(self, items: Sequence[tuple[int, NewEmail]]) -> list[Accepted | Exception]:
        """Store emails (each with its first event, tags and idempotency key) in one
        transaction: one commit for many concurrent Sends (group commit).

        A key already used (within 24 h) returns the original email when the request
        is the same, and AlreadyExists when it differs. Keys are inserted with ON
        CONFLICT DO NOTHING in a fixed order, so a key another transaction is writing
        waits for it (no deadlock between batches); the email of a key that lost is
        removed before commit. When a batch fails on one bad row, each email is
        stored on its own so the others are not refused with it.
        """
        xid: str | None = None  # set once every row is written: only the COMMIT is left
        try:
            async with self.engine.begin() as conn:
                stored, xid = await self._insert_many(conn, items, utcnow())
        except IntegrityError:
            if len(items) == 1:
                raise
            return [await self._accept_alone(account_id, new) for account_id, new in items]
        except (DBAPIError, OSError) as exc:
            if xid is None:  # failed before the COMMIT: rolled back, nothing stored
                raise
            # The connection failed during COMMIT: the rows may be stored. Answer by
            # what the database says happened, never a guess (core.storage.commit_outcome).
            await commit_outcome.settle(self.engine, xid, [new.message_id for _, new in items], exc)
        results: list[Accepted | Exception] = []
        for (account_id, new), accepted in zip(items, stored):
            if accepted is None:
                try:
                    accepted = await self._replay(account_id, new)
                except Exception as exc:  # AlreadyExists, FailedPrecondition
                    results.append(exc)
                    continue
            results.append(accepted)
        return results

    async def _accept_alone(self, account_id: int, new: NewEmail) -> Accepted | Exception:
        try:
            return await self.accept_email(account_id, new)
        except Exception as exc:
            return exc

    async def _insert_many(
        self, conn: AsyncConnection, items: Sequence[tuple[int, NewEmail]], now: datetime
    ) -> tuple[list[Accepted | None], str]:
        """Insert the batch; None marks an email whose idempotency key was taken (a replay).
        Also returns the transaction's id (core.storage.commit_outcome), read in the same
        INSERT."""
        keys: dict[tuple[int, str], int] = {}  # (account, key) → index of its first use
        replays: set[int] = set()
        for index, (account_id, new) in enumerate(items):
            if new.idempotency_key:
                if (account_id, new.idempotency_key) in keys:
                    replays.add(index)
                else:
                    keys[(account_id, new.idempotency_key)] = index
        if keys:
            await conn.execute(
                delete(idempotency_keys).where(
                    tuple_(idempotency_keys.c.account_id, idempotency_keys.c.key).in_(list(keys)),
                    idempotency_keys.c.created_at < now - IDEMPOTENCY_TTL,
                )
            )
        fresh = [index for index in range(len(items)) if index not in replays]
        ids, xid = await insert_emails(conn, [_email_row(*items[index]) for index in fresh], now)
        email_ids = dict(zip(fresh, ids))
        if keys:
            ordered = sorted(keys.items())  # one lock order for every batch
            statement = _insert_ignoring_conflicts(conn, idempotency_keys).returning(
                idempotency_keys.c.account_id, idempotency_keys.c.key
            )
            won = {
                (row.account_id, row.key)
                for row in await conn.execute(
                    statement,
                    [
                        {
                            "account_id": account_id,
                            "key": key,
                            "fingerprint": items[index][1].fingerprint,
                            "email_id": email_ids[index],
                            "created_at": now,
                        }
                        for (account_id, key), index in ordered
                    ],
                )
            }
            lost = [index for (account_id, key), index in ordered if (account_id, key) not in won]
            if lost:
                replays.update(lost)
                await conn.execute(delete(emails).where(emails.c.id.in_([email_ids.pop(i) for i in lost])))
        tags = [
            {"email_id": email_ids[index], "tag": tag, "account_id": items[index][0]}
            for index in email_ids
            for tag in sorted(set(items[index][1].content.get("tags", []) or []))  # type: ignore[call-overload]
        ]
        if tags:
            await conn.execute(insert(email_tags), tags)
        await insert_terms(conn, term_rows((items[i][0], email_id, items[i][1].content) for i, email_id in email_ids.items()), now)
        await append_events(conn, [(items[i][0], email_id, _first_event(items[i][1])) for i, email_id in email_ids.items()], now)
        return [
            None if index in replays else Accepted(email_ids[index], items[index][1].message_id, items[index][1].status)
            for index in range(len(items))
        ], xid

    async def _replay(self, account_id: int, new: NewEmail) -> Accepted:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(idempotency_keys.c.fingerprint, emails.c.id, emails.c.public_id, emails.c.send_at)
                    .join(emails, emails.c.id == idempotency_keys.c.email_id)
                    .where(
                        idempotency_keys.c.account_id == account_id,
                        idempotency_keys.c.key == new.idempotency_key,
                    )
                )
            ).first()
        if row is None:  # the other request rolled back; the caller may simply retry
            raise FailedPrecondition("a concurrent request with this idempotency_key failed; retry")
        if row.fingerprint != new.fingerprint:
            raise AlreadyExists(
                "idempotency_key was already used with a different request in the last 24 hours"
            )
        status = Status.SCHEDULED if row.send_at is not None else Status.QUEUED
        return Accepted(int(row.id), str(row.public_id), status, replayed=True)

    async def mark_published(self, email_ids: Sequence[int]) -> None:
        """Note that these emails' delivery messages are on the queue. Only rows no worker
        has touched yet: one a worker took (and deferred or gave back, clearing
        published_at for the scheduler) must not be marked, or it would never be
        published again."""
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # one prepared statement whatever the count
                await conn.execute(_MARK_PUBLISHED, {"ids": list(email_ids), "queued": Status.QUEUED.value, "now": utcnow()})
                return
            await conn.execute(
                update(emails)
                .where(
                    emails.c.id.in_(list(email_ids)),
                    emails.c.status == Status.QUEUED.value,
                    emails.c.published_at.is_(None),
                    emails.c.updated_at == emails.c.created_at,
                )
                .values(published_at=utcnow())
            )

    async def cancel_scheduled(self, account_id: int, message_id: str) -> None:
        """SCHEDULED → CANCELED with an event; NotFound or FailedPrecondition otherwise."""
        now = utcnow()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    update(emails)
                    .where(
                        emails.c.public_id == message_id,
                        emails.c.account_id == account_id,
                        emails.c.status == Status.SCHEDULED.value,
                    )
                    .values(status=Status.CANCELED.value, updated_at=now, next_attempt_at=None)
                    .returning(emails.c.id)
                )
            ).first()
            if row is not None:
                await add_events(conn, account_id, row.id, [NewEvent(EventType.CANCELED)], now)
                return
            current = await conn.scalar(
                select(emails.c.status).where(
                    emails.c.public_id == message_id, emails.c.account_id == account_id
                )
            )
        if current is None:
            raise NotFound(f"no email {message_id!r}")
        raise FailedPrecondition(f"only a scheduled email can be canceled; this one is {current}")

    async def get_email(self, account_id: int, message_id: str) -> EmailRecord | None:
        """The account's email with its events, oldest first; None if not the account's."""
        async with self.engine.connect() as conn:
            return await read_email(conn, account_id, message_id)
