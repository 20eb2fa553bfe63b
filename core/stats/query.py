"""Reading the counter rows for GetStats: a few indexed range reads of the rollup's
tables (account, dimension, [key,] hour), never of emails or events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.stats.mapping import BOUNCE, DEFERRAL
from core.stats.model import Bucket, Group, Patterns, Stats, add, zero
from core.stats.request import GroupBy, Source, StatsQuery, hour_time
from core.storage.db import STATS_METRICS, stats_failures, stats_hourly, stats_rollup_position
from core.times import aware

TOP = 10


def _where(table: Any, account_id: int, source: Source, query: StatsQuery) -> list[Any]:
    conditions = [table.c.account_id == account_id, table.c.dimension == source.dimension,
                  table.c.hour >= query.first_hour, table.c.hour < query.end_hour]
    if source.key is not None:
        conditions.append(table.c.key == source.key)
    return conditions


def _group_of(query: StatsQuery, key: str, variant: str) -> tuple[str, str, str]:
    if query.group_by is GroupBy.TAG:
        return (key, "", "")
    if query.group_by is GroupBy.TEMPLATE:
        return ("", key, "")
    if query.group_by is GroupBy.TEMPLATE_VARIANT:
        return ("", key, variant)
    return ("", "", "")


class StatsStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def stats(self, account_id: int, query: StatsQuery) -> Stats:
        async with self.engine.connect() as conn:
            groups = await self._groups(conn, account_id, query)
            totals = await self._totals(conn, account_id, query)
            failures = await self._failures(conn, account_id, query)
            counted_through = aware(await conn.scalar(
                select(stats_rollup_position.c.last_occurred_at).where(stats_rollup_position.c.id == 1)
            ))
        return Stats(query.start, query.end, groups, totals, failures, counted_through)

    async def _groups(self, conn: AsyncConnection, account_id: int, query: StatsQuery) -> list[Group]:
        width = query.granularity.hours
        bucket = (stats_hourly.c.hour // width).label("bucket") if width > 1 else stats_hourly.c.hour.label("bucket")
        source = query.groups
        sums = [func.sum(stats_hourly.c[name]).label(name) for name in STATS_METRICS]
        rows = await conn.execute(
            select(stats_hourly.c.key, stats_hourly.c.variant, bucket, *sums)
            .where(*_where(stats_hourly, account_id, source, query))
            .group_by(stats_hourly.c.key, stats_hourly.c.variant, bucket)
        )
        found: dict[tuple[str, str, str], dict[int, dict[str, int]]] = {}
        for row in rows:
            per_bucket = found.setdefault(_group_of(query, row.key, row.variant), {})
            counts = per_bucket.setdefault(int(row.bucket) * width, zero())
            for name in STATS_METRICS:
                counts[name] += int(getattr(row, name) or 0)
        if query.group_by is GroupBy.NONE and not found:
            found[("", "", "")] = {}
        return [self._group(query, key, per_bucket) for key, per_bucket in sorted(found.items())]

    @staticmethod
    def _group(query: StatsQuery, key: tuple[str, str, str], per_bucket: dict[int, dict[str, int]]) -> Group:
        totals = zero()
        buckets = []
        for hour in query.buckets():
            counts = per_bucket.get(hour) or zero()
            add(totals, counts)
            buckets.append(Bucket(hour_time(hour), counts))
        return Group(key[0], key[1], key[2], buckets, totals)

    async def _totals(self, conn: AsyncConnection, account_id: int, query: StatsQuery) -> dict[str, int]:
        sums = [func.sum(stats_hourly.c[name]).label(name) for name in STATS_METRICS]
        row = (await conn.execute(select(*sums).where(*_where(stats_hourly, account_id, query.totals, query)))).one()
        return {name: int(getattr(row, name) or 0) for name in STATS_METRICS}

    async def _failures(self, conn: AsyncConnection, account_id: int, query: StatsQuery) -> Patterns:
        where = _where(stats_failures, account_id, query.totals, query)
        total = func.sum(stats_failures.c.count).label("total")
        codes: dict[str, list[tuple[int, int]]] = {BOUNCE: [], DEFERRAL: []}
        for row in await conn.execute(
            select(stats_failures.c.kind, stats_failures.c.smtp_code, total).where(*where)
            .group_by(stats_failures.c.kind, stats_failures.c.smtp_code)
        ):
            codes.setdefault(row.kind, []).append((int(row.smtp_code), int(row.total)))
        domains: dict[str, list[tuple[str, int]]] = {BOUNCE: [], DEFERRAL: []}
        for row in await conn.execute(
            select(stats_failures.c.kind, stats_failures.c.domain, total).where(*where, stats_failures.c.domain != "")
            .group_by(stats_failures.c.kind, stats_failures.c.domain)
        ):
            domains.setdefault(row.kind, []).append((str(row.domain), int(row.total)))
        return Patterns(_top(codes[BOUNCE]), _top(domains[BOUNCE]), _top(codes[DEFERRAL]), _top(domains[DEFERRAL]))


def _top(pairs: list[Any]) -> list[Any]:
    """The TOP most frequent, ties by value."""
    return sorted(pairs, key=lambda p: (-p[1], p[0]))[:TOP]

