"""Use cases behind the API: accept an email, report on it, cancel it, follow events."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.delivery.queue import Publisher
from core.domains.senders import VerifiedSenders
from core.emails.after_commit import best_effort
from core.emails.content import EmailContent, content_to_dict
from core.emails.mime import envelope_recipients
from core.emails.model import EmailRecord, EventRecord, EventType, Status
from core.emails.reads import get_email  # one statement, autocommit: one round trip
from core.emails.scheduling import schedule_violations
from core.emails.store import Accepted, NewEmail, Store
from core.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    PostwireError,
)
from core.events.cursor import START, Position
from core.events.follow import Heartbeat, follow, start_position
from core.events.notify import Notifier
from core.ids import new_message_id
from core.observability import context
from core.returns.unsubscribe import AccountDefaults, resolve
from core.storage.db import database_errors_as_unavailable
from core.storage.group_commit import GroupCommit
from core.templates.model import TemplateUse
from core.times import utcnow

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 200
MAX_BATCH = 1000  # emails per SendBatch call


@dataclass(frozen=True)
class SendOptions:
    send_at: datetime | None = None
    expires_at: datetime | None = None
    idempotency_key: str = ""
    test: bool = False  # sent with a test key: reported as delivered, never handed to SMTP
    template: TemplateUse | None = None  # rendered from a template (core.templates.send)


def fingerprint(content: dict[str, object], options: SendOptions) -> str:
    """A digest of everything a request asks for, to tell a replay from a new request."""
    if options.template is not None:  # the request, not what it rendered to (core.templates.variants)
        content = {**content, "subject": "", "text_body": "", "html_body": "", "template": list(options.template.request)}
    payload = {
        "content": content,
        "send_at": options.send_at.isoformat() if options.send_at else None,
        "expires_at": options.expires_at.isoformat() if options.expires_at else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class PublishedMarks:
    """Records "published" for accepted emails in batches, off the request path.
    A batch lost to a crash only means the scheduler publishes those emails again
    after the grace period: a duplicate message, which the atomic claim ignores."""

    def __init__(self, store: Store, delay: float = 0.1) -> None:
        self.store = store
        self.delay = delay
        self._pending: list[int] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, email_id: int) -> None:
        self._pending.append(email_id)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._later())

    async def _later(self) -> None:
        await asyncio.sleep(self.delay)
        await self.flush()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self.store.mark_published(batch)
        except Exception:  # the scheduler covers these: published again after the grace period
            log.warning("could not record %d emails as published", len(batch), exc_info=True)


class EmailService:
    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        *,
        notifier: Notifier | None = None,
        poll_interval: float = 1.0,
        heartbeat_interval: float = 15.0,
        schedule_horizon: timedelta = timedelta(days=30),
        publish_grace: timedelta = timedelta(seconds=5),
        events_retention: timedelta = timedelta(days=30),
        publish_timeout: float = 2.0,
        senders: VerifiedSenders | None = None,
        unsubscribe_defaults: AccountDefaults | None = None,
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.notifier = notifier or Notifier()
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.events_retention = events_retention
        self.stopping = asyncio.Event()
        self.published = PublishedMarks(store)
        self._announcing: set[asyncio.Future[object]] = set()  # batches' publishes after their answer
        # One transaction at a time: each carries every Send that arrived while the
        # previous one committed, which costs far less CPU than many small ones.
        self.accepts: GroupCommit[tuple[int, NewEmail], Accepted] = GroupCommit(store.accept_many, parallel=1)
        self.schedule_horizon = schedule_horizon
        self.publish_grace = publish_grace
        self.publish_timeout = publish_timeout
        self.senders = senders  # None: any From domain (POSTWIRE_REQUIRE_VERIFIED_DOMAINS=false)
        self.unsubscribe_defaults = unsubscribe_defaults  # None: List-Unsubscribe only when asked for

    async def send(self, account_id: int, content: EmailContent, options: SendOptions = SendOptions()) -> tuple[str, Status]:
        """Store the email (with its first event), then publish its id.

        Once stored, the email is accepted: if the publish fails in any way (broker
        down, a confirm that never comes, ...) the scheduler publishes it later, so
        the failure is logged, not reported. An error answered here means nothing
        was stored.
        """
        new = await self._prepare(account_id, content, options, utcnow())
        async with database_errors_as_unavailable():
            accepted = await self.accepts.submit((account_id, new))
        # Committed: from here on Send answers OK whatever happens (core.emails.after_commit).
        context.bind_email(accepted.message_id, account_id)  # for the log lines of this request
        await self._announce_new(accepted, new)
        return accepted.message_id, accepted.status

    async def send_batch(
        self, account_id: int, items: Sequence[tuple[EmailContent, SendOptions] | PostwireError]
    ) -> list[tuple[str, Status] | Exception]:
        """SendBatch: every email of `items` that is not already an error is stored in
        one transaction (with its first event, tags and idempotency key), then
        published. Each item ends as (message id, status) or as the error it alone
        would have got; only a database that cannot be reached fails the whole call
        (and then nothing was stored)."""
        now = utcnow()
        results: list[Any] = list(items)  # the errors stay; every other item is replaced below
        valid = [index for index, item in enumerate(items) if not isinstance(item, PostwireError)]
        todo: list[tuple[int, NewEmail]] = []
        for index in valid:  # one after the other: the awaits are cache hits, tasks would cost more
            try:
                todo.append((index, await self._prepare(account_id, *items[index], now)))  # type: ignore[misc]
            except PostwireError as exc:
                results[index] = exc
        if not todo:
            return results
        async with database_errors_as_unavailable():
            stored = await self.store.accept_many([(account_id, new) for _, new in todo])
        for (index, _), outcome in zip(todo, stored):
            results[index] = outcome if isinstance(outcome, Exception) else (outcome.message_id, outcome.status)
        # Committed: the answer need not wait for the publishes (best effort, the scheduler
        # covers them), so a stream's next group is stored while these go out.
        due = [o for (_, new), o in zip(todo, stored) if isinstance(o, Accepted) and not o.replayed
               and new.status is Status.QUEUED]
        if due:
            announcing = asyncio.ensure_future(best_effort(
                lambda: self._publish_batch([o.email_id for o in due]),
                what=f"publishing {len(due)} emails of a batch", timeout=self.publish_timeout,
            ))
            self._announcing.add(announcing)
            announcing.add_done_callback(self._announcing.discard)
        return results

    async def _prepare(self, account_id: int, content: EmailContent, options: SendOptions, now: datetime) -> NewEmail:
        """The row to store for a valid email, or the error that refuses it."""
        violations = schedule_violations(options.send_at, options.expires_at, now, self.schedule_horizon)
        if len(options.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            violations.append(FieldViolation("idempotency_key", f"at most {MAX_IDEMPOTENCY_KEY} characters"))
        if violations:
            raise InvalidArgument(violations)
        if self.senders is not None and not options.test:
            await self.senders.check(account_id, content.from_address.email)
        scheduled = options.send_at is not None and options.send_at > now
        content = await resolve(content, account_id, self.unsubscribe_defaults)
        stored = content_to_dict(content)
        return NewEmail(
            message_id=new_message_id(),
            content=stored,
            recipients=envelope_recipients(content),
            status=Status.SCHEDULED if scheduled else Status.QUEUED,
            publish_after=options.send_at if scheduled and options.send_at else now + self.publish_grace,
            send_at=options.send_at if scheduled else None,
            expires_at=options.expires_at,
            idempotency_key=options.idempotency_key,
            fingerprint=fingerprint(stored, options) if options.idempotency_key else "",
            test_mode=options.test,
            template=options.template,
        )

    async def _announce_new(self, accepted: Accepted, new: NewEmail) -> None:
        """Publish a newly stored email that is due now (a replay or a scheduled one is not)."""
        if not accepted.replayed and new.status is Status.QUEUED:
            await self.announce(accepted.email_id, accepted.message_id)

    async def announce(self, email_id: int, message_id: str) -> None:
        """Publish a committed email's id and note it as published, best effort: any
        failure leaves it to the scheduler, after the grace period. Never raises."""
        await best_effort(lambda: self._publish(email_id), what=f"publishing {message_id}", timeout=self.publish_timeout)

    async def _publish(self, email_id: int) -> None:
        await self.publisher.publish(email_id)
        self.published.add(email_id)  # recorded in batches, off the request path

    async def _publish_batch(self, email_ids: list[int]) -> None:
        await self.publisher.publish_many(email_ids)
        for email_id in email_ids:
            self.published.add(email_id)

    async def get_status(self, account_id: int, message_id: str) -> EmailRecord:
        if not message_id:
            raise InvalidArgument([FieldViolation("message_id", "required")])
        async with database_errors_as_unavailable():
            record = await get_email(self.store.engine, account_id, message_id)
        if record is None:
            raise NotFound(f"no email {message_id!r}")
        horizon = utcnow() - self.events_retention
        if record.created_at < horizon:
            record = dataclasses.replace(record, events_pruned_before=horizon)
        return record

    async def cancel_scheduled(self, account_id: int, message_id: str) -> Status:
        if not message_id:
            raise InvalidArgument([FieldViolation("message_id", "required")])
        async with database_errors_as_unavailable():
            await self.store.cancel_scheduled(account_id, message_id)
        return Status.CANCELED

    def follow_events(
        self,
        account_id: int,
        *,
        after: Position | int = START,
        from_now: bool = False,
        message_ids: Sequence[str] = (),
        types: Sequence[EventType] = (),
        tags: Sequence[str] = (),
    ) -> AsyncIterator[EventRecord | Heartbeat]:
        """Stored events after `after`, then new ones as they commit (core/events/follow.py)."""
        return follow(
            self, account_id, after=after, from_now=from_now, message_ids=message_ids, types=types, tags=tags
        )

    async def _start_position(self, account_id: int, after: Position | int, from_now: bool) -> Position:
        return await start_position(self, account_id, after, from_now)

    async def close(self) -> None:
        if self._announcing:  # a batch's publishes still going out: give them their timeout
            await asyncio.wait(self._announcing, timeout=self.publish_timeout)
        await self.published.flush()

    def shut_down(self) -> None:
        """End every stream (resumably) and refuse new ones."""
        self.stopping.set()
        self.notifier.wake_all()
