"""The accept path's one-statement INSERT (core.emails.insert_rows) stores every column
as given, on PostgreSQL (arrays through unnest) and SQLite (executemany)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.insert_rows import insert_emails
from core.storage.db import accounts, emails, make_engine
from core.storage.migrate import upgrade
from core.times import aware, utcnow
from tests.support.stack import fresh_database


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    with fresh_database() if request.param == "postgresql" else _sqlite(tmp_path) as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        await engine.dispose()


class _sqlite:
    def __init__(self, tmp_path: Path) -> None:
        self.url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        pass


def _row(account_id: int, n: int, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "public_id": f"msg_{n:04d}",
        "account_id": account_id,
        "status": "queued",
        "content": {"subject": f"Grüße {n} ✉", "tags": ["a"], "nested": {"n": n, "none": None}},
        "next_attempt_at": None,
        "send_at": None,
        "expires_at": None,
        "recipients": {f"rcpt{n}@bücher.example": {"status": "queued"}},
        "test_mode": False,
    }
    row.update(overrides)
    return row


def _same(stored: object, given: object) -> bool:
    """SQLite hands timestamps back naive (in UTC)."""
    return (aware(stored) if isinstance(stored, datetime) else stored) == given


async def test_a_batch_is_stored_column_for_column_with_ids_in_the_rows_order(engine: AsyncEngine) -> None:
    now = utcnow().replace(microsecond=123456)
    later = now + timedelta(hours=1)
    async with engine.begin() as conn:
        account_id = int((await conn.execute(insert(accounts).values(name="a", created_at=now).returning(accounts.c.id))).scalar_one())
        rows = [
            _row(account_id, 3, status="scheduled", send_at=later, next_attempt_at=later),
            _row(account_id, 1, expires_at=later, test_mode=True),
            _row(account_id, 2),
        ]
        ids, xid = await insert_emails(conn, rows, now)
    assert (xid != "") is (engine.dialect.name == "postgresql")
    async with engine.connect() as conn:
        stored = {r.id: r for r in await conn.execute(select(emails))}
    assert sorted(stored) == sorted(ids) and len(set(ids)) == 3
    for email_id, row in zip(ids, rows):
        got = stored[email_id]
        for column, value in row.items():
            assert _same(getattr(got, column), value), column
        assert (got.attempts, got.last_error, aware(got.created_at), aware(got.updated_at)) == (0, "", now, now)


async def test_a_batch_with_no_time_columns_set_and_a_single_row_both_insert(engine: AsyncEngine) -> None:
    now = utcnow()
    async with engine.begin() as conn:
        account_id = int((await conn.execute(insert(accounts).values(name="a", created_at=now).returning(accounts.c.id))).scalar_one())
        one, _ = await insert_emails(conn, [_row(account_id, 1)], now)
        many, _ = await insert_emails(conn, [_row(account_id, n) for n in range(2, 300)], now)
        none, xid = await insert_emails(conn, [], now)
    assert len(one) == 1 and len(many) == 298 and none == [] and xid == ""
    assert len(set(one + many)) == 299
