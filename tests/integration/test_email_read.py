"""GetStatus's read (core.emails.reads.get_email): the row and its events in one
statement, on SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import EventType, NewEvent, Status
from core.emails.reads import get_email
from core.events.append import add_events
from core.storage.db import emails, make_engine
from core.storage.migrate import upgrade
from core.times import utcnow
from tests.integration.conftest import new_account

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_url() -> Iterator[str]:
    name = f"postwire_read_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    upgrade(url)
    engine = make_engine(url)
    yield engine
    await engine.dispose()


async def store_email(engine: AsyncEngine, account_id: int, public_id: str, kinds: list[EventType]) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        email_id = (await conn.execute(insert(emails).values(
            public_id=public_id, account_id=account_id, status=Status.QUEUED.value, content={"subject": "x"},
            attempts=0, last_error="", created_at=now, updated_at=now, recipients={"a@example.com": {"status": "queued"}},
        ).returning(emails.c.id))).scalar_one()
        if kinds:
            await add_events(conn, account_id, email_id, [NewEvent(k) for k in kinds], now)


async def test_row_and_events_in_one_statement(any_engine: AsyncEngine) -> None:
    account = await new_account(any_engine, "a")
    other = await new_account(any_engine, "b")
    await store_email(any_engine, account, "msg_1", [EventType.QUEUED, EventType.SENT])
    await store_email(any_engine, account, "msg_2", [])
    statements: list[str] = []
    event.listen(any_engine.sync_engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    record = await get_email(any_engine, account, "msg_1")
    assert record is not None and record.message_id == "msg_1" and record.status is Status.QUEUED
    assert [e.type for e in record.events] == [EventType.QUEUED, EventType.SENT]
    assert all(e.message_id == "msg_1" for e in record.events)
    assert record.events[0].id < record.events[1].id
    assert list(record.recipients) == ["a@example.com"]
    assert [s for s in statements if "emails" in s] == statements[-1:]  # one statement read it all

    empty = await get_email(any_engine, account, "msg_2")
    assert empty is not None and empty.events == []
    assert await get_email(any_engine, other, "msg_1") is None  # not that account's
    assert await get_email(any_engine, account, "msg_missing") is None
