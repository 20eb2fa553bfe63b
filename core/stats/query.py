"""Reading the counter rows for GetStats: a few indexed range reads of the rollup's
tables (account, dimension, [key,] hour) — the daily rows for day buckets, the hourly
ones for hour buckets — never of emails or events."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.stats.mapping import BOUNCE, DEFERRAL
from core.stats.model import ZERO, Bucket, Counts, Group, Patterns, Stats
from core.stats.request import Granularity, GroupBy, Source, StatsQuery
from core.storage.stats_tables import STATS_METRICS, stats_daily, stats_failures, stats_hourly, stats_rollup_position
from core.times import aware

TOP = 10


def _where(table: Any, account_id: int, source: Source, query: StatsQuery) -> list[Any]:
    conditions = [table.c.account_id == account_id, table.c.dimension == source.dimension,
                  table.c.hour >= query.first_hour, table.c.hour < query.end_hour]
    if source.key is not None:
        conditions.append(table.c.key == source.key)
    return conditions


def _table(query: StatsQuery) -> Any:
    """Day buckets read the daily rows (the range is whole days), hour buckets the hourly ones."""
    return stats_daily if query.granularity is Granularity.DAY else stats_hourly


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
        table = _table(query)  # a row is a bucket of a key and variant already
        columns = [table.c[name] for name in STATS_METRICS]
        select_ = select(table.c.key, table.c.variant, table.c.hour, *columns)
        rows = await conn.execute(select_.where(*_where(table, account_id, query.groups, query)))
        found: dict[tuple[str, str, str], dict[int, tuple[int, ...]]] = {}
        for row in rows:
            per_bucket = found.setdefault(_group_of(query, row[0], row[1]), {})
            counts = tuple(row[3:])  # NOT NULL integers
            hour = int(row[2])
            earlier = per_bucket.get(hour)  # two variants of one template in a TEMPLATE group
            per_bucket[hour] = counts if earlier is None else tuple(a + b for a, b in zip(earlier, counts, strict=True))
        if query.group_by is GroupBy.NONE and not found:
            found[("", "", "")] = {}
        return [self._group(query, key, per_bucket) for key, per_bucket in sorted(found.items())]

    @staticmethod
    def _group(query: StatsQuery, key: tuple[str, str, str], per_bucket: dict[int, tuple[int, ...]]) -> Group:
        nothing = ZERO
        buckets = [Bucket(hour, per_bucket.get(hour, nothing)) for hour in query.buckets()]
        totals = tuple(map(sum, zip(*per_bucket.values(), strict=True))) if per_bucket else ZERO
        return Group(key[0], key[1], key[2], buckets, totals)

    async def _totals(self, conn: AsyncConnection, account_id: int, query: StatsQuery) -> Counts:
        table = _table(query)
        sums = [func.sum(table.c[name]).label(name) for name in STATS_METRICS]
        row = (await conn.execute(select(*sums).where(*_where(table, account_id, query.totals, query)))).one()
        return tuple(int(v or 0) for v in row)

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

