"""The stats rollup and GetStats' reads on PostgreSQL and SQLite: exact counts, nothing
counted twice after an interrupted round, grouping by tag, template and variant,
failure patterns, hour and day boundaries, tenants apart, and event pruning that waits
for the rollup and leaves the counts."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import EventType
from core.errors import InvalidArgument
from core.events.retention import prune_events
from core.stats.model import as_dict
from core.stats.position import lag
from core.stats.query import StatsStore
from core.stats.request import Granularity, GroupBy, build_query
from core.stats.rollup import StatsRollup
from core.storage.db import email_tags, emails, events, make_engine
from core.storage.migrate import upgrade
from core.storage.stats_tables import stats_hourly
from tests.integration.conftest import new_account
from tests.support.stack import fresh_database

T0 = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
_ids = itertools.count()


@pytest.fixture(params=["postgresql", "sqlite"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgresql":
        with fresh_database() as url:
            upgrade(url)
            engine = make_engine(url)
            yield engine
            await engine.dispose()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
        upgrade(url)
        engine = make_engine(url)
        yield engine
        await engine.dispose()


async def _email(engine: AsyncEngine, account_id: int, tags: tuple[str, ...] = (), template: str | None = None,
                 variant: str | None = None) -> int:
    async with engine.begin() as conn:
        email_id = int((await conn.execute(insert(emails).values(
            public_id=f"msg_{next(_ids)}", account_id=account_id, status="queued", content={}, attempts=0, last_error="",
            created_at=T0, updated_at=T0, template_id=template, template_variant=variant,
        ).returning(emails.c.id))).scalar_one())
        for tag in tags:
            await conn.execute(insert(email_tags).values(email_id=email_id, tag=tag, account_id=account_id))
    return email_id


async def _events(engine: AsyncEngine, account_id: int, email_id: int, *items: tuple[EventType, datetime] | tuple) -> None:
    async with engine.begin() as conn:
        for item in items:
            type_, at, *rest = item
            code, recipient, detail = (rest + [None, "", ""])[:3] if rest else (None, "", "")
            await conn.execute(insert(events).values(
                account_id=account_id, email_id=email_id, type=type_.value, occurred_at=at, smtp_code=code,
                recipient=recipient or "", detail=detail or "", smtp_message="",
            ))


async def _roll_all(engine: AsyncEngine) -> int:
    """Roll up until every event is counted. On PostgreSQL the in-flight hold-back is
    cluster-wide: another database's long transaction delays the rollup a while."""
    rollup, total = StatsRollup(engine), 0
    deadline = time.monotonic() + 60
    while True:
        total += (await rollup.roll(3)).events
        if (await lag(engine)).events == 0 or time.monotonic() > deadline:
            return total
        await asyncio.sleep(0.05)


async def _stats(engine: AsyncEngine, account_id: int, granularity: Granularity = Granularity.DAY,
                 group_by: GroupBy = GroupBy.NONE, **kw: str):  # type: ignore[no-untyped-def]
    query = build_query(T0 - timedelta(days=2), T0 + timedelta(days=2), granularity, group_by, **kw)
    return await StatsStore(engine).stats(account_id, query)


async def test_counts_are_exact_per_type_and_tenant(engine: AsyncEngine) -> None:
    a, b = await new_account(engine, "a"), await new_account(engine, "b")
    e1 = await _email(engine, a)
    await _events(engine, a, e1, (EventType.QUEUED, T0), (EventType.SENDING, T0), (EventType.SENT, T0, 250, "x@a.example"),
                  (EventType.OPENED, T0, None, "x@a.example", "first"), (EventType.OPENED, T0, None, "x@a.example", "repeat"),
                  (EventType.OPENED, T0, None, "x@a.example", "first machine"),
                  (EventType.CLICKED, T0, None, "x@a.example", "first"), (EventType.UNSUBSCRIBED, T0),
                  (EventType.COMPLAINED, T0))
    e2 = await _email(engine, b)
    await _events(engine, b, e2, (EventType.QUEUED, T0), (EventType.DEFERRED, T0, 451, "y@b.example"),
                  (EventType.BOUNCED, T0, 550, "y@b.example"), (EventType.SUPPRESSED, T0), (EventType.FAILED, T0))
    assert await _roll_all(engine) == 14
    mine, theirs = as_dict((await _stats(engine, a)).totals), as_dict((await _stats(engine, b)).totals)
    assert {k: v for k, v in mine.items() if v} == {
        "sent": 1, "delivered": 1, "opened": 2, "unique_opened": 1, "machine_opened": 1, "clicked": 1,
        "unique_clicked": 1, "unsubscribed": 1, "complained": 1}
    assert {k: v for k, v in theirs.items() if v} == {
        "sent": 1, "deferred": 1, "bounced_hard": 1, "suppressed": 1, "failed": 1}
    assert (await _stats(engine, a)).failures.bounce_codes == []  # b's failures are not a's
    assert (await lag(engine)).events == 0


async def test_an_interrupted_round_counts_nothing_and_the_next_counts_once(engine: AsyncEngine) -> None:
    a = await new_account(engine, "a")
    e = await _email(engine, a, tags=("t",))
    await _events(engine, a, e, (EventType.QUEUED, T0), (EventType.SENT, T0))

    async def crash() -> None:
        raise RuntimeError("killed before the commit")

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the events are readable (the hold-back) and the round crashes
        try:
            await StatsRollup(engine).roll(before_commit=crash)
        except RuntimeError:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the events never became readable")
    assert as_dict((await _stats(engine, a)).totals)["sent"] == 0
    assert (await lag(engine)).events == 2
    assert await _roll_all(engine) == 2
    assert await _roll_all(engine) == 0
    totals = as_dict((await _stats(engine, a)).totals)
    assert (totals["sent"], totals["delivered"]) == (1, 1)


async def test_groups_by_tag_template_and_variant_and_filters(engine: AsyncEngine) -> None:
    a = await new_account(engine, "a")
    both = await _email(engine, a, tags=("news", "eu"), template="tpl_1", variant="A")
    news = await _email(engine, a, tags=("news",), template="tpl_1", variant="B")
    plain = await _email(engine, a)
    for email_id in (both, news, plain):
        await _events(engine, a, email_id, (EventType.QUEUED, T0))
    await _roll_all(engine)

    by_tag = await _stats(engine, a, group_by=GroupBy.TAG)
    assert [(g.tag, as_dict(g.totals)["sent"]) for g in by_tag.groups] == [("", 1), ("eu", 1), ("news", 2)]
    assert as_dict(by_tag.totals)["sent"] == 3  # each email once
    by_template = await _stats(engine, a, group_by=GroupBy.TEMPLATE)
    assert [(g.template_id, as_dict(g.totals)["sent"]) for g in by_template.groups] == [("", 1), ("tpl_1", 2)]
    by_variant = await _stats(engine, a, group_by=GroupBy.TEMPLATE_VARIANT, template_id="tpl_1")
    assert [(g.template_id, g.template_variant, as_dict(g.totals)["sent"]) for g in by_variant.groups] == [
        ("tpl_1", "A", 1), ("tpl_1", "B", 1)]
    assert as_dict(by_variant.totals)["sent"] == 2
    tagged = await _stats(engine, a, tag="eu")
    assert [as_dict(g.totals)["sent"] for g in tagged.groups] == [1] and as_dict(tagged.totals)["sent"] == 1


async def test_failure_patterns_rank_codes_and_domains_of_bounces_and_deferrals(engine: AsyncEngine) -> None:
    a = await new_account(engine, "a")
    e = await _email(engine, a)
    items = [(EventType.BOUNCED, T0, 550, f"u{i}@gmail.example") for i in range(3)]
    items += [(EventType.BOUNCED, T0, 554, "v@corp.example"), (EventType.DELAYED, T0, None, "w@corp.example")]
    items += [(EventType.DEFERRED, T0, 421, "x@slow.example"), (EventType.DEFERRED, T0, None, "x@slow.example"),
              (EventType.DEFERRED, T0, None, "")]
    await _events(engine, a, e, *items)
    await _roll_all(engine)
    failures = (await _stats(engine, a)).failures
    assert failures.bounce_codes == [(550, 3), (0, 1), (554, 1)]
    assert failures.bounce_domains == [("gmail.example", 3), ("corp.example", 2)]
    assert failures.deferral_codes == [(0, 2), (421, 1)]
    assert failures.deferral_domains == [("slow.example", 2)]


async def test_hour_and_day_buckets_split_at_utc_boundaries(engine: AsyncEngine) -> None:
    a = await new_account(engine, "a")
    e = await _email(engine, a)
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    await _events(engine, a, e, (EventType.SENT, midnight - timedelta(microseconds=1)), (EventType.SENT, midnight),
                  (EventType.SENT, midnight + timedelta(minutes=59, seconds=59)), (EventType.SENT, midnight + timedelta(hours=1)))
    await _roll_all(engine)
    daily = (await _stats(engine, a)).groups[0].buckets
    assert [(b.start, as_dict(b.counts)["delivered"]) for b in daily if as_dict(b.counts)["delivered"]] == [
        (datetime(2026, 3, 1, tzinfo=UTC), 1), (midnight, 3)]
    assert len(daily) == 5 and daily[0].start == datetime(2026, 2, 27, tzinfo=UTC)
    hourly = (await _stats(engine, a, Granularity.HOUR)).groups[0].buckets
    assert [(b.start, as_dict(b.counts)["delivered"]) for b in hourly if as_dict(b.counts)["delivered"]] == [
        (midnight - timedelta(hours=1), 1), (midnight, 2), (midnight + timedelta(hours=1), 1)]
    assert len(hourly) == 97  # 23:00 two days before T0 (23:30) to 00:00 after T0 + 2 days


async def test_pruning_waits_for_the_rollup_and_the_counts_outlive_the_events(engine: AsyncEngine) -> None:
    a = await new_account(engine, "a")
    e = await _email(engine, a)
    await _events(engine, a, e, (EventType.QUEUED, T0), (EventType.SENT, T0))
    cutoff = T0 + timedelta(days=1)
    assert await prune_events(engine, cutoff) == 0  # not counted yet: kept
    await _roll_all(engine)
    await _events(engine, a, e, (EventType.BOUNCED, T0, 550, "x@a.example"))  # old, written after the round
    assert await prune_events(engine, cutoff) == 2
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(events)) == 1
    await _roll_all(engine)
    assert await prune_events(engine, cutoff) == 1
    totals = as_dict((await _stats(engine, a)).totals)
    assert (totals["sent"], totals["delivered"], totals["bounced_hard"]) == (1, 1, 1)
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(stats_hourly)) > 0


async def test_an_event_of_a_transaction_still_open_is_counted_once_it_commits_never_skipped(
    engine: AsyncEngine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's single writer commits in id order")
    a = await new_account(engine, "a")
    e = await _email(engine, a)
    slow = await engine.connect()
    try:
        transaction = await slow.begin()
        await slow.execute(insert(events).values(account_id=a, email_id=e, type="sent", occurred_at=T0, detail=""))
        await _events(engine, a, e, (EventType.QUEUED, T0))  # a later transaction, committed first
        await StatsRollup(engine).roll()
        totals = as_dict((await _stats(engine, a)).totals)
        assert (totals["sent"], totals["delivered"]) == (0, 0)  # both wait behind the open transaction
        await transaction.commit()
    finally:
        await slow.close()
    await _roll_all(engine)
    totals = as_dict((await _stats(engine, a)).totals)
    assert (totals["sent"], totals["delivered"]) == (1, 1)


async def test_groups_come_in_pages_that_cover_each_group_once_and_tokens_are_bound(engine: AsyncEngine) -> None:
    a, b = await new_account(engine, "a"), await new_account(engine, "b")
    for n in range(7):
        email_id = await _email(engine, a, tags=(f"t{n}", "all"), template=f"tpl_{n % 3}", variant="AB"[n % 2])
        await _events(engine, a, email_id, (EventType.QUEUED, T0 + timedelta(hours=n)))
    await _roll_all(engine)
    store = StatsStore(engine)

    async def pages(group_by: GroupBy, page_size: int, account_id: int = a) -> list[list[tuple[str, str, str]]]:
        found, token = [], ""
        while True:
            query = build_query(T0 - timedelta(days=2), T0 + timedelta(days=2), Granularity.HOUR, group_by,
                                page_size=page_size, page_token=token)
            page = await store.stats(account_id, query)
            found.append([(g.tag, g.template_id, g.template_variant) for g in page.groups])
            assert as_dict(page.totals)["sent"] == (7 if account_id == a else 0)  # every page has the totals
            if not (token := page.next_page_token):
                return found

    whole = (await pages(GroupBy.TAG, 1000))[0]
    assert [g[0] for g in whole] == ["all", *[f"t{n}" for n in range(7)]]
    assert await pages(GroupBy.TAG, 3) == [whole[:3], whole[3:6], whole[6:]]
    variants = await pages(GroupBy.TEMPLATE_VARIANT, 2)
    assert [len(p) for p in variants] == [2, 2, 2] and sum(variants, []) == (await pages(GroupBy.TEMPLATE_VARIANT, 0))[0]
    assert await pages(GroupBy.TAG, 3, account_id=b) == [[]]

    first = await store.stats(a, build_query(T0 - timedelta(days=2), T0 + timedelta(days=2), Granularity.HOUR,
                                             GroupBy.TAG, page_size=3))
    for account_id, other in ((a, {"granularity": Granularity.DAY}), (a, {"tag": "t1"}), (b, {})):
        wanted = {"granularity": Granularity.HOUR, **other}
        query = build_query(T0 - timedelta(days=2), T0 + timedelta(days=2), wanted.pop("granularity"), GroupBy.TAG,
                            page_size=3, page_token=first.next_page_token, **wanted)
        with pytest.raises(InvalidArgument) as caught:
            await store.stats(account_id, query)
        assert caught.value.violations[0].field == "page_token"


def test_a_page_holds_at_most_1000_buckets_and_at_least_one_group() -> None:
    month = build_query(T0 - timedelta(days=31), T0, Granularity.HOUR, GroupBy.TAG, page_size=1000)
    assert month.groups_per_page() == 1  # 744 buckets a group
    assert build_query(T0 - timedelta(days=30), T0, Granularity.DAY, GroupBy.TAG).groups_per_page() == 32
    with pytest.raises(InvalidArgument, match="negative"):
        build_query(T0 - timedelta(days=1), T0, Granularity.DAY, GroupBy.TAG, page_size=-1)
