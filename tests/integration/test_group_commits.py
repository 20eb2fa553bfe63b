"""Group commits on real databases: many emails accepted, claimed and recorded per
transaction, with idempotency keys and duplicates sorted out correctly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.delivery.store import DeliveryStore
from core.emails.model import AttemptResult, EventType, RecipientState, Status
from core.emails.store import Accepted, NewEmail, Store
from core.errors import AlreadyExists
from core.ids import new_message_id
from core.storage.db import accounts, emails, events, make_engine, suppressions
from core.storage.migrate import upgrade
from core.times import utcnow
from tests.support.stack import fresh_database


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        upgrade(url)
        engine = make_engine(url)
        yield engine
        await engine.dispose()
        return
    with fresh_database() as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        await engine.dispose()


async def _account(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        return int((await conn.execute(insert(accounts).values(name="a", created_at=utcnow()).returning(accounts.c.id))).scalar_one())


def _email(to: str = "rcpt@example.com", key: str = "", fingerprint: str = "") -> NewEmail:
    return NewEmail(
        message_id=new_message_id(),
        content={"subject": "hi", "tags": ["t1", "t2"]},
        recipients=[to],
        status=Status.QUEUED,
        publish_after=utcnow() + timedelta(seconds=5),
        idempotency_key=key,
        fingerprint=fingerprint,
    )


async def _count(engine: AsyncEngine, table, **where: object) -> int:  # noqa: ANN001
    async with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for column, value in where.items():
            query = query.where(table.c[column] == value)
        return int(await conn.scalar(query) or 0)


async def test_one_batch_stores_every_email_with_its_first_event_and_tags(engine: AsyncEngine) -> None:
    account = await _account(engine)
    results = await Store(engine).accept_many([(account, _email(f"r{i}@example.com")) for i in range(50)])
    assert all(isinstance(r, Accepted) and not r.replayed for r in results)
    assert len({r.email_id for r in results}) == 50  # type: ignore[union-attr]
    assert await _count(engine, emails) == 50
    assert await _count(engine, events, type=EventType.QUEUED.value) == 50


async def test_a_key_repeated_in_one_batch_stores_one_email_and_replays_the_other(engine: AsyncEngine) -> None:
    account = await _account(engine)
    first, same, different = (
        _email(key="order-1", fingerprint="f1"),
        _email(key="order-1", fingerprint="f1"),
        _email(key="order-1", fingerprint="f2"),
    )
    results = await Store(engine).accept_many([(account, first), (account, same), (account, different)])
    assert isinstance(results[0], Accepted) and not results[0].replayed
    assert isinstance(results[1], Accepted) and results[1].replayed and results[1].email_id == results[0].email_id
    assert isinstance(results[2], AlreadyExists)
    assert await _count(engine, emails) == 1


async def test_concurrent_batches_racing_for_the_same_keys_store_each_key_once(engine: AsyncEngine) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has a single writer: batches cannot race")
    account = await _account(engine)
    store = Store(engine)
    keys = [f"k{i}" for i in range(20)]

    async def batch(order: list[str]) -> list[Accepted | Exception]:
        return await store.accept_many([(account, _email(key=k, fingerprint=k)) for k in order])

    a, b = await asyncio.gather(batch(keys), batch(list(reversed(keys))))
    for x, y in zip(a, reversed(b)):
        assert isinstance(x, Accepted) and isinstance(y, Accepted) and x.email_id == y.email_id
        assert x.replayed != y.replayed
    assert await _count(engine, emails) == 20


async def test_claims_in_one_batch_take_each_email_once_and_look_up_suppressions(engine: AsyncEngine) -> None:
    account = await _account(engine)
    accepted = await Store(engine).accept_many(
        [(account, _email("ok@example.com")), (account, _email("Gone@Example.com"))]
    )
    async with engine.begin() as conn:
        await conn.execute(insert(suppressions).values(account_id=account, address="gone@example.com", reason="550 no", created_at=utcnow()))
    ok_id, gone_id = (r.email_id for r in accepted)  # type: ignore[union-attr]
    store = DeliveryStore(engine)
    lease = timedelta(seconds=60)
    claims = await asyncio.gather(store.claim(ok_id, lease), store.claim(ok_id, lease), store.claim(gone_id, lease))
    assert [c is not None for c in claims] == [True, False, True]
    ok, _, gone = claims
    assert ok.suppressed == {}  # type: ignore[union-attr]
    assert gone.suppressed == {"Gone@Example.com": "550 no"}  # type: ignore[union-attr]


async def test_attempts_recorded_together_only_count_while_the_claim_is_theirs(engine: AsyncEngine) -> None:
    account = await _account(engine)
    accepted = await Store(engine).accept_many([(account, _email(f"r{i}@example.com")) for i in range(3)])
    store = DeliveryStore(engine)
    claims = [await store.claim(r.email_id, timedelta(seconds=60)) for r in accepted]  # type: ignore[union-attr]
    assert all(claims)
    stale = claims[2]
    await store.release(stale, timedelta(0))  # type: ignore[arg-type]

    def sent(claimed):  # noqa: ANN001, ANN202
        address = next(iter(claimed.recipients))
        return AttemptResult(Status.SENT, {address: RecipientState(Status.SENT, 250, "ok")}, [], "", None, {})

    recorded = await asyncio.gather(*(store.finish_attempt(c, sent(c)) for c in claims))  # type: ignore[arg-type]
    assert recorded == [True, True, False]
    assert await _count(engine, emails, status=Status.SENT.value) == 2


async def test_mark_published_marks_only_queued_rows_no_worker_has_touched(engine: AsyncEngine) -> None:
    account_id = await _account(engine)
    store = Store(engine)
    untouched, claimed, scheduled = (await store.accept_many([(account_id, _email()) for _ in range(3)]))
    async with engine.begin() as conn:  # a worker took one and gave it back; one is scheduled
        await conn.execute(emails.update().where(emails.c.id == claimed.email_id).values(updated_at=utcnow() + timedelta(seconds=1)))
        await conn.execute(emails.update().where(emails.c.id == scheduled.email_id).values(status=Status.SCHEDULED.value))
    await store.mark_published([untouched.email_id, claimed.email_id, scheduled.email_id, 10**12])
    async with engine.connect() as conn:
        published = {r.id for r in await conn.execute(select(emails.c.id).where(emails.c.published_at.is_not(None)))}
    assert published == {untouched.email_id}
