"""A submitted (raw) message through EmailService.send on the embedded store: stored with
its bytes, replayed by its idempotency key, and its bytes pruned with the bodies."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.content import content_from_dict
from core.emails.model import Status
from core.emails.service import EmailService
from core.emails.store import Store
from core.emails.submission import parse_submission
from core.emails.validation import SendLimits
from core.events.retention import prune
from core.storage.db import emails
from core.times import utcnow
from tests.integration.conftest import new_account

RAW = b"From: s@example.com\r\nTo: t@example.org\r\nMessage-ID: <one@client.example>\r\nSubject: Hi\r\n\r\nHello.\r\n"


class Published:
    def __init__(self) -> None:
        self.ids: list[int] = []

    async def publish(self, email_id: int) -> None:
        self.ids.append(email_id)


async def test_raw_message_is_stored_replayed_and_pruned(engine: AsyncEngine) -> None:
    account = await new_account(engine, "smtp")
    published = Published()
    service = EmailService(Store(engine), published)  # type: ignore[arg-type]
    content, options = parse_submission(RAW, "s@example.com", ["t@example.org", "hidden@example.org"], SendLimits())
    message_id, _ = await service.send(account, content, options)
    again, _ = await service.send(account, *parse_submission(RAW, "s@example.com", ["hidden@example.org", "t@example.org"], SendLimits()))
    assert again == message_id and len(published.ids) == 1  # a resubmission after a lost 250 is a replay

    record = await service.get_status(account, message_id)
    assert sorted(record.recipients) == ["hidden@example.org", "t@example.org"]
    async with engine.connect() as conn:
        stored = (await conn.execute(select(emails.c.content).where(emails.c.public_id == message_id))).scalar_one()
    loaded = content_from_dict(dict(stored))
    assert loaded.raw == RAW and not loaded.unsubscribe  # no account default: no List-Unsubscribe
    assert [a.email for a in loaded.bcc] == ["hidden@example.org", "t@example.org"]  # in a canonical order

    async with engine.begin() as conn:
        await conn.execute(update(emails).where(emails.c.public_id == message_id).values(
            status=Status.SENT.value, created_at=utcnow() - timedelta(days=10),
        ))
    await prune(engine, events_before=utcnow() - timedelta(days=30), bodies_before=utcnow() - timedelta(days=7))
    async with engine.connect() as conn:
        pruned = (await conn.execute(select(emails.c.content).where(emails.c.public_id == message_id))).scalar_one()
    assert "raw" not in pruned and content_from_dict(dict(pruned)).raw == b""
    await service.close()
