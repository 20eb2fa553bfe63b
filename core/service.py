"""Use cases behind the API: accept an email, report on it, follow the event log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, OperationalError

from core.content import EmailContent, content_to_dict
from core.errors import FieldViolation, InvalidArgument, NotFound, Unavailable
from core.ids import new_message_id
from core.model import EmailRecord, EventRecord, EventType, Status
from core.queue import Publisher
from core.store import Store

log = logging.getLogger(__name__)


@asynccontextmanager
async def _database() -> AsyncIterator[None]:
    """Turn 'cannot reach the database' into Unavailable, which clients may retry."""
    try:
        yield
    except OperationalError as exc:
        raise Unavailable("database unavailable") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise Unavailable("database unavailable") from exc
        raise


class EmailService:
    def __init__(self, store: Store, publisher: Publisher, poll_interval: float = 0.2) -> None:
        self.store = store
        self.publisher = publisher
        self.poll_interval = poll_interval

    async def send(self, account_id: int, content: EmailContent) -> tuple[str, Status]:
        """Store the email (with its `queued` event), then publish its id.

        Once stored, the email is accepted: if the broker is down the sweeper
        publishes it later, so a publish failure is logged, not reported.
        """
        message_id = new_message_id()
        async with _database():
            email_id = await self.store.accept_email(account_id, message_id, content_to_dict(content))
        try:
            await self.publisher.publish(email_id)
        except Unavailable:
            log.warning("publish failed; the sweeper will retry", extra={"message_id": message_id})
            return message_id, Status.QUEUED
        async with _database():
            await self.store.mark_published(email_id)
        return message_id, Status.QUEUED

    async def get_status(self, account_id: int, message_id: str) -> EmailRecord:
        if not message_id:
            raise InvalidArgument([FieldViolation("message_id", "required")])
        async with _database():
            record = await self.store.get_email(account_id, message_id)
        if record is None:
            raise NotFound(f"no email {message_id!r}")
        return record

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
            async with _database():
                batch = await self.store.list_events(
                    account_id, after_id=position, message_ids=message_ids, types=types
                )
            for event in batch:
                position = event.id
                yield event
            if not batch:
                await asyncio.sleep(self.poll_interval)
