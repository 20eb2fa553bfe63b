"""Reading the counter rows for GetStats: a few indexed range reads of the rollup's
tables (account, dimension, [key,] hour) — the daily rows for day buckets, the hourly
ones for hour buckets — never of emails or events.

Groups come a page at a time (core.stats.request: page_size and a bucket budget): the
page's group keys first (distinct keys in order, past the token's), then only their
rows, so a page costs the same however many tags or templates the account has."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.errors import FieldViolation, InvalidArgument
from core.stats.mapping import BOUNCE, DEFERRAL
from core.stats.model import ZERO, Bucket, Counts, Group, Patterns, Stats
from core.stats.request import Granularity, GroupBy, Source, StatsQuery
from core.storage import page_tokens
from core.storage.stats_tables import STATS_METRICS, stats_daily, stats_failures, stats_hourly, stats_rollup_position
from core.times import aware

TOP = 10
_RPC = "GetStats"


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
        fingerprint = query.fingerprint(account_id)
        after = _after(query.page_token, fingerprint) if query.page_token else None
        async with self.engine.connect() as conn:
            groups, last = await self._groups(conn, account_id, query, after)
            totals = await self._totals(conn, account_id, query)
            failures = await self._failures(conn, account_id, query)
            counted_through = aware(await conn.scalar(
                select(stats_rollup_position.c.last_occurred_at).where(stats_rollup_position.c.id == 1)
            ))
        token = "" if last is None else page_tokens.encode(_RPC, fingerprint, page_tokens.EPOCH, json.dumps(last))
        return Stats(query.start, query.end, groups, totals, failures, counted_through, token)

    async def _groups(self, conn: AsyncConnection, account_id: int, query: StatsQuery,
                      after: list[str] | None) -> tuple[list[Group], list[str] | None]:
        """This page's groups, and the key of its last group when more follow."""
        table = _table(query)  # a row is a bucket of a key and variant already
        where = _where(table, account_id, query.groups, query)
        last: list[str] | None = None
        if query.group_by is not GroupBy.NONE:
            unit = [table.c.key, table.c.variant] if query.group_by is GroupBy.TEMPLATE_VARIANT else [table.c.key]
            keys_query = select(*unit).where(*where).distinct().order_by(*unit).limit(query.groups_per_page() + 1)
            if after is not None:
                if len(after) != len(unit):
                    raise InvalidArgument([FieldViolation("page_token", "not a page token returned by GetStats")])
                keys_query = keys_query.where(tuple_(*unit) > tuple_(*after) if len(unit) > 1 else unit[0] > after[0])
            keys = [list(row) for row in await conn.execute(keys_query)]
            if len(keys) > query.groups_per_page():
                keys = keys[:query.groups_per_page()]
                last = keys[-1]
            if not keys:
                return [], None
            where = [*where, table.c.key >= keys[0][0], table.c.key <= keys[-1][0]]
            if len(unit) > 1:
                where.append(tuple_(*unit).in_([tuple(k) for k in keys]))
        columns = [table.c[name] for name in STATS_METRICS]
        rows = await conn.execute(select(table.c.key, table.c.variant, table.c.hour, *columns).where(*where))
        found: dict[tuple[str, str, str], dict[int, tuple[int, ...]]] = {}
        for row in rows:
            per_bucket = found.setdefault(_group_of(query, row[0], row[1]), {})
            counts = tuple(row[3:])  # NOT NULL integers
            hour = int(row[2])
            earlier = per_bucket.get(hour)  # two variants of one template in a TEMPLATE group
            per_bucket[hour] = counts if earlier is None else tuple(a + b for a, b in zip(earlier, counts, strict=True))
        if query.group_by is GroupBy.NONE and not found:
            found[("", "", "")] = {}
        return [self._group(query, key, per_bucket) for key, per_bucket in sorted(found.items())], last

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



def _after(token: str, fingerprint: str) -> list[str]:
    """The group key a page token points past (InvalidArgument on `page_token` otherwise)."""
    _, key = page_tokens.decode(token, _RPC, fingerprint, str)
    try:
        after = json.loads(key)
    except ValueError:
        after = None
    if not (isinstance(after, list) and after and all(isinstance(k, str) for k in after)):
        raise InvalidArgument([FieldViolation("page_token", "not a page token returned by GetStats")])
    return after
