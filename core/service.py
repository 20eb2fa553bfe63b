"""Use cases behind the API: accept an email, report on it, cancel it, follow events."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.content import EmailContent, content_to_dict
from core.db import database_errors_as_unavailable
from core.errors import FieldViolation, InvalidArgument, NotFound, Unavailable
from core.ids import new_message_id
from core.mime import envelope_recipients
from core.model import EmailRecord, EventRecord, EventType, Status
from core.queue import Publisher
from core.scheduling import schedule_violations
from core.store import NewEmail, Store, utcnow

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class SendOptions:
    send_at: datetime | None = None
    expires_at: datetime | None = None
    idempotency_key: str = ""
    test: bool = False  # sent with a test key: reported as delivered, never handed to SMTP


def fingerprint(content: dict[str, object], options: SendOptions) -> str:
    """A digest of everything a request asks for, to tell a replay from a new request."""
    payload = {
        "content": content,
        "send_at": options.send_at.isoformat() if options.send_at else None,
        "expires_at": options.expires_at.isoformat() if options.expires_at else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class EmailService:
    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        *,
        poll_interval: float = 0.2,
        schedule_horizon: timedelta = timedelta(days=30),
        publish_grace: timedelta = timedelta(seconds=5),
    ) -> None:
        self.store = store
        self.publisher = publisher
        self.poll_interval = poll_interval
        self.schedule_horizon = schedule_horizon
        self.publish_grace = publish_grace

    async def send(self, account_id: int, content: EmailContent, options: SendOptions = SendOptions()) -> tuple[str, Status]:
        """Store the email (with its first event), then publish its id.

        Once stored, the email is accepted: if the broker is down the scheduler
        publishes it later, so a publish failure is logged, not reported.
        """
        now = utcnow()
        violations = schedule_violations(options.send_at, options.expires_at, now, self.schedule_horizon)
        if len(options.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            violations.append(FieldViolation("idempotency_key", f"at most {MAX_IDEMPOTENCY_KEY} characters"))
        if violations:
            raise InvalidArgument(violations)
        scheduled = options.send_at is not None and options.send_at > now
        stored = content_to_dict(content)
        new = NewEmail(
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
        )
        async with database_errors_as_unavailable():
            accepted = await self.store.accept_email(account_id, new)
        if accepted.replayed or scheduled:
            return accepted.message_id, accepted.status
        try:
            await self.publisher.publish(accepted.email_id)
        except Unavailable:
            log.warning("publish failed; the scheduler will publish %s", accepted.message_id)
            return accepted.message_id, accepted.status
        async with database_errors_as_unavailable():
            await self.store.mark_published(accepted.email_id)
        return accepted.message_id, accepted.status

    async def get_status(self, account_id: int, message_id: str) -> EmailRecord:
        if not message_id:
            raise InvalidArgument([FieldViolation("message_id", "required")])
        async with database_errors_as_unavailable():
            record = await self.store.get_email(account_id, message_id)
        if record is None:
            raise NotFound(f"no email {message_id!r}")
        return record

    async def cancel_scheduled(self, account_id: int, message_id: str) -> Status:
        if not message_id:
            raise InvalidArgument([FieldViolation("message_id", "required")])
        async with database_errors_as_unavailable():
            await self.store.cancel_scheduled(account_id, message_id)
        return Status.CANCELED

    async def follow_events(
        self,
        account_id: int,
        *,
        after_id: int,
        message_ids: Sequence[str] = (),
        types: Sequence[EventType] = (),
    ) -> AsyncIterator[EventRecord]:
        """Stored events after `after_id`, then new ones as they are written, forever."""
        position = after_id
        while True:
            async with database_errors_as_unavailable():
                batch = await self.store.list_events(
                    account_id, after_id=position, message_ids=message_ids, types=types
                )
            for event in batch:
                position = event.id
                yield event
            if not batch:
                await asyncio.sleep(self.poll_interval)
