"""Recording tracking hits on both databases: first/repeat exact per (email, kind,
recipient), events in the owning account's log, nothing for an unknown email."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from core.storage.db import accounts, emails, events, make_engine
from core.storage.migrate import upgrade
from core.times import utcnow
from core.tracking.record import HitRecorder
from core.tracking.tokens import CLICK, OPEN, Claim
from tests.support.stack import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'tracking.db'}"
        return
    with fresh_database("postwire_tracking_record") as database_url:
        yield database_url


async def _scenario(url: str) -> list[tuple[int, str, str, str]]:
    engine = make_engine(url)
    try:
        now = utcnow()
        async with engine.begin() as conn:
            a = (await conn.execute(insert(accounts).values(name="a", created_at=now).returning(accounts.c.id))).scalar_one()
            b = (await conn.execute(insert(accounts).values(name="b", created_at=now).returning(accounts.c.id))).scalar_one()
            await conn.execute(insert(emails).values(
                public_id="msg_one", account_id=a, status="sent", content={}, created_at=now, updated_at=now,
                recipients={"r@example.org": {"status": "sent", "code": 250, "message": ""}}, attempts=1, last_error="",
            ))
        recorder = HitRecorder(engine)
        results = await asyncio.gather(*(recorder.record(Claim(OPEN, a, "msg_one", 0), "", "ua") for _ in range(5)))
        assert sorted(results) == [False, False, False, False, True]  # exactly one first, even at once
        assert await recorder.record(Claim(CLICK, a, "msg_one", 0, "https://x.example"), "head", "ua") is True
        assert await recorder.record(Claim(OPEN, b, "msg_one", 0), "", "ua") is None  # another tenant's email
        async with engine.connect() as conn:
            rows = (await conn.execute(select(events.c.account_id, events.c.type, events.c.recipient, events.c.detail)
                                       .order_by(events.c.id))).all()
        return [(r[0] - a, r[1], r[2], r[3]) for r in rows]
    finally:
        await engine.dispose()


def test_first_is_exact_and_events_belong_to_the_owner(url: str) -> None:
    upgrade(url)
    rows = asyncio.run(_scenario(url))
    assert {r[0] for r in rows} == {0}
    opens = [r for r in rows if r[1] == "opened"]
    assert len(opens) == 5 and sum(r[3].startswith("first") for r in opens) == 1
    assert all(r[2] == "r@example.org" for r in rows)
    [click] = [r for r in rows if r[1] == "clicked"]
    assert click[3] == "first; machine: head; url: https://x.example; user agent: ua"
