"""A COMMIT whose connection fails: the answer follows what the database did.

The database's do_commit is wrapped so the connection breaks either just after the
COMMIT went through or instead of it; Store.accept_many must then report the emails
accepted (they are stored and will be delivered) or unavailable with nothing stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import Status
from core.emails.store import Accepted, NewEmail, Store
from core.errors import Unavailable
from core.ids import new_message_id
from core.storage import commit_outcome
from core.storage.db import emails, make_engine
from core.storage.migrate import upgrade
from core.times import utcnow
from tests.integration.test_group_commits import _account
from tests.support.stack import fresh_database


@pytest.fixture
async def engine() -> AsyncIterator[AsyncEngine]:
    with fresh_database() as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        await engine.dispose()


def _email() -> NewEmail:
    return NewEmail(
        message_id=new_message_id(), content={"subject": "hi"}, recipients=["r@example.com"],
        status=Status.QUEUED, publish_after=utcnow() + timedelta(seconds=5),
    )


async def _stored(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(emails)) or 0)


def break_commit(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, *, committed: bool) -> None:
    """The next COMMIT loses its connection, after (committed) or instead of committing."""
    dialect = engine.sync_engine.dialect
    real: Callable[[Any], None] = dialect.do_commit

    def do_commit(dbapi_connection: Any) -> None:
        monkeypatch.setattr(dialect, "do_commit", real)  # once
        if committed:
            real(dbapi_connection)
        else:
            dbapi_connection.rollback()
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(dialect, "do_commit", do_commit)


async def test_a_commit_that_went_through_before_the_connection_broke_is_accepted(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await _account(engine)
    break_commit(engine, monkeypatch, committed=True)
    results = await Store(engine).accept_many([(account, _email()), (account, _email())])
    assert all(isinstance(r, Accepted) for r in results)
    assert await _stored(engine) == 2


async def test_a_commit_that_did_not_go_through_answers_unavailable_and_stores_nothing(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await _account(engine)
    break_commit(engine, monkeypatch, committed=False)
    with pytest.raises(Unavailable):
        await Store(engine).accept_many([(account, _email())])
    assert await _stored(engine) == 0


async def test_a_transaction_still_in_progress_is_waited_for_then_unknown_is_unavailable(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.begin()
        xid = str(await conn.scalar(text("SELECT pg_current_xact_id()::text")))
        assert await commit_outcome.status(engine, xid) == "in progress"
        with pytest.raises(Unavailable, match="GetStatus: msg_x"):
            await commit_outcome.settle(engine, xid, ["msg_x"], OSError("gone"), patience=0.3)
        await conn.commit()
    await commit_outcome.settle(engine, xid, ["msg_x"], OSError("gone"), patience=0.3)  # committed: returns
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT 1")) == 1
