"""Inbound reports follow the body retention once parsed: raw bounces and complaints
quote the original message, so they are not kept longer than its body. A report still
waiting to be parsed is never pruned, however old."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.events.retention import prune
from core.returns.schema import inbound_reports
from core.times import utcnow


async def test_parsed_reports_past_the_body_retention_are_pruned_and_unparsed_ones_kept(engine: AsyncEngine) -> None:
    now = utcnow()
    old, recent = now - timedelta(days=10), now - timedelta(hours=1)
    rows = [("old-bounce", old, "bounce"), ("old-junk", old, "unparseable"), ("old-waiting", old, "received"),
            ("recent-bounce", recent, "bounce")]
    async with engine.begin() as conn:
        for name, received_at, state in rows:
            await conn.execute(insert(inbound_reports).values(
                received_at=received_at, rcpt_to=f"{name}@bounces.example.com", raw=b"x", state=state,
            ))

    pruned = await prune(engine, events_before=now - timedelta(days=30), bodies_before=now - timedelta(days=7))

    assert pruned.reports == 2
    async with engine.connect() as conn:
        left = sorted((await conn.scalars(select(inbound_reports.c.rcpt_to))).all())
    assert left == ["old-waiting@bounces.example.com", "recent-bounce@bounces.example.com"]
