"""GetStats at 1,000,000 emails: the stats rollup's rate over a month of history, then
GetStats latency over 30 days, against GetStatus by id in the same invocation.

    .venv/bin/python bench/stats.py [--emails 1000000] [--others 200000] [-n 200]

1. A throwaway stack (server, no worker; the scheduler stopped so the rollup is timed
   alone) and its database, seeded server-side (INSERT … SELECT generate_series, a
   transaction per 50,000 emails, so events carry their batch's txid as real commits
   do): `--emails` emails of the bench account spread over the last 30 days, and
   `--others` more over 4 other accounts. Each email has 1 or 2 of 17 tags, 4 in 5 a
   template (4 templates × 2 variants), and its events: QUEUED, SENDING, then SENT
   (or BOUNCED 550/554 for 1 in 50, to 50 domains), a DEFERRED 451 before it for 1 in
   25, OPENED for 1 in 4 (a machine one for 1 in 20, a repeat for 1 in 12) and CLICKED
   for 1 in 20: about 3.4 events per email.
2. The rollup (core.stats.rollup, batches of 2,000 events a transaction, as the
   scheduler runs it) over the whole log: events/s and counter rows written.
3. GetStats over gRPC (sequential calls, the SDK client) for the last 30 days by day
   and by hour, not grouped, grouped by tag and by template: p50/p99 of a page (and of
   the second page, when there is one) and their ratio to GetStatus by id (random
   emails) on the same stack. Target: p99 ≤ 50 ms a page. Following every page
   (get_all_stats) is timed too, for the record.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _stack import bench_stack  # noqa: E402

from core.stats.rollup import StatsRollup  # noqa: E402
from core.storage.db import make_engine  # noqa: E402
from postwire_client import Client  # noqa: E402

BATCH = 50_000
DAYS = 30

EMAILS = """
INSERT INTO emails (id, public_id, account_id, status, content, attempts, last_error, created_at, updated_at,
                    sent_at, recipients, test_mode, template_id, template_version, template_variant)
SELECT g, 'msg_' || substr(md5(%(salt)s || g::text), 1, 24), {account}, 'sent', '{{}}'::json, 1, '',
       %(t0)s::timestamptz + g * %(step)s::interval, %(t0)s::timestamptz + g * %(step)s::interval, NULL, NULL, false,
       CASE WHEN g %% 5 = 0 THEN NULL ELSE 'tpl_' || (g %% 4) END, 1,
       CASE WHEN g %% 5 = 0 THEN NULL WHEN g %% 2 = 0 THEN 'A' ELSE 'B' END
FROM generate_series(%(lo)s, %(hi)s) g
"""
TAGS = """
INSERT INTO email_tags (email_id, tag, account_id)
SELECT g, 'tag-' || (g %% 10), {account} FROM generate_series(%(lo)s, %(hi)s) g
UNION ALL
SELECT g, 'campaign-' || (g %% 7), {account} FROM generate_series(%(lo)s, %(hi)s) g WHERE g %% 3 = 0
"""
# (type, seconds after acceptance, smtp code, detail, which emails)
EVENTS = [
    ("queued", 0, "NULL", "''", "true"),
    ("sending", 1, "NULL", "''", "true"),
    ("deferred", 2, "451", "'451 4.7.1 try later'", "g % 25 = 0"),
    ("sent", 3, "250", "'via relay'", "g % 50 <> 0"),
    ("bounced", 3, "CASE WHEN g % 100 = 0 THEN 554 ELSE 550 END", "'550 5.1.1 no such user'", "g % 50 = 0"),
    ("opened", 600, "NULL", "CASE WHEN g % 20 = 0 THEN 'first machine' ELSE 'first' END", "g % 4 = 0"),
    ("opened", 900, "NULL", "'repeat'", "g % 12 = 0"),
    ("clicked", 700, "NULL", "'first https://example.com/'", "g % 20 = 0"),
]
EVENT_SQL = """
INSERT INTO events (account_id, email_id, type, occurred_at, smtp_code, smtp_message, detail, recipient)
SELECT {account}, g, '{type}', %(t0)s::timestamptz + g * %(step)s::interval + interval '{after} seconds',
       {code}, '', {detail}, 'u' || g || '@d' || (g %% 50) || '.example'
FROM generate_series(%(lo)s, %(hi)s) g WHERE {where}
"""


def seed(stack, n: int, others: int) -> tuple[int, int, float]:  # noqa: ANN001
    """(emails, events, seconds): the bench account's n emails then the others'."""
    started = time.monotonic()
    with stack.sql() as conn:
        account = conn.execute("SELECT account_id FROM api_keys ORDER BY id LIMIT 1").fetchone()[0]
        extra = [r[0] for r in conn.execute(
            "INSERT INTO accounts (name, created_at) SELECT 'stats-' || g, now() FROM generate_series(1, 4) g"
            " RETURNING id").fetchall()]
        conn.execute("SET session_replication_role = replica")
        base = conn.execute("SELECT coalesce(max(id), 0) FROM emails").fetchone()[0] + 1
        total = n + others
        conn.execute("SELECT setval(pg_get_serial_sequence('emails', 'id'), %s)", (base + total,))
        t0 = time.time() - DAYS * 86400 + 3600
        step = f"{(DAYS * 86400 - 7200) / total:.6f} seconds"
        account_sql = (f"(CASE WHEN g < {base + n} THEN {account} "
                       f"ELSE (ARRAY{extra}::bigint[])[1 + g %% {len(extra)}] END)")
        events = 0
        for lo in range(base, base + total, BATCH):
            params = {"lo": lo, "hi": min(lo + BATCH, base + total) - 1, "salt": "s", "t0": _iso(t0), "step": step}
            with conn.transaction():
                conn.execute(EMAILS.format(account=account_sql), params)
                conn.execute(TAGS.format(account=account_sql), params)
                for type_, after, code, detail, where in EVENTS:
                    sql = EVENT_SQL.format(account=account_sql, type=type_, after=after, code=code.replace("%", "%%"),
                                           detail=detail.replace("%", "%%"), where=where.replace("%", "%%"))
                    events += conn.execute(sql, params).rowcount
        conn.execute("VACUUM ANALYZE emails")
        conn.execute("VACUUM ANALYZE events")
    return total, events, time.monotonic() - started


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))


async def rollup(url: str) -> tuple[int, int, float]:
    engine = make_engine(url)
    roll = StatsRollup(engine)
    events = rows = 0
    started = time.monotonic()
    try:
        while (done := await roll.roll(2000)).events:
            events += done.events
            rows += done.rows
    finally:
        await engine.dispose()
    return events, rows, time.monotonic() - started


def timed(call, n: int) -> tuple[float, float]:  # noqa: ANN001
    for _ in range(min(20, n)):
        call()
    latencies = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - start) * 1000)
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return q[49], q[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emails", type=int, default=1_000_000)
    parser.add_argument("--others", type=int, default=200_000)
    parser.add_argument("-n", type=int, default=200, help="calls per measurement")
    args = parser.parse_args()
    with bench_stack(workers=0) as stack:
        scheduler = next(p for p in stack.procs if p.args == ["scheduler"])
        scheduler.stop()
        stack.procs.remove(scheduler)
        emails, events, seconds = seed(stack, args.emails, args.others)
        print(f"seeded {emails:,} emails and {events:,} events over {DAYS} days in {seconds:.0f} s "
              f"({args.emails:,} of the bench account)")
        url = stack.env["POSTWIRE_DATABASE_URL"]
        rolled, rows, seconds = asyncio.run(rollup(url))
        print(f"rollup: {rolled:,} events in {seconds:.1f} s = {rolled / seconds:,.0f} events/s, "
              f"{rows:,} counter rows written ({rows / rolled:.2f} per event)")
        with stack.sql() as conn:
            conn.execute("VACUUM ANALYZE stats_hourly")
            conn.execute("VACUUM ANALYZE stats_failures")
            sizes = conn.execute("SELECT (SELECT count(*) FROM stats_hourly), (SELECT count(*) FROM stats_failures)"
                                 ).fetchone()
            ids = [r[0] for r in conn.execute(
                "SELECT public_id FROM emails WHERE account_id = (SELECT account_id FROM api_keys ORDER BY id LIMIT 1)"
                " ORDER BY random() LIMIT 2000").fetchall()]
        print(f"stats tables: {sizes[0]:,} hourly rows, {sizes[1]:,} failure rows")
        now = time.time()
        start = _from(now - DAYS * 86400)
        with Client(stack.address, stack.key) as client:
            ref50, ref99 = timed(lambda: client.get_status(random.choice(ids)), args.n)
            print(f"reference GetStatus by id            p50 {ref50:6.1f} ms  p99 {ref99:6.1f} ms")
            worst = 0.0
            for granularity in ("day", "hour"):
                for group_by in ("none", "tag", "template"):
                    query = {"start": start, "granularity": granularity, "group_by": group_by}
                    reply = client.get_stats(**query)
                    whole = client.get_all_stats(**query)
                    buckets = sum(len(g.buckets) for g in reply.groups)
                    p50, p99 = timed(lambda: client.get_stats(**query), args.n)  # noqa: B023
                    worst = max(worst, p99)
                    print(f"GetStats 30 days by {granularity:<4} {group_by:<8}  p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
                          f"  ({p50 / ref50:4.1f}x / {p99 / ref99:4.1f}x GetStatus; a page of {len(reply.groups)} of "
                          f"{len(whole.groups)} groups, {buckets:,} buckets; totals sent {reply.totals.sent:,})")
                    if reply.next_page_token:
                        later = {**query, "page_token": reply.next_page_token}
                        p50, p99 = timed(lambda: client.get_stats(**later), args.n)  # noqa: B023
                        worst = max(worst, p99)
                        print(f"  its second page                    p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
                        p50, p99 = timed(lambda: client.get_all_stats(**query), max(20, args.n // 5))  # noqa: B023
                        print(f"  every page (get_all_stats)         p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
                              f"  ({sum(len(g.buckets) for g in whole.groups):,} buckets; not a target)")
        print(f"worst GetStats p99 {worst:.1f} ms (target ≤ 50 ms): {'met' if worst <= 50 else 'NOT met'}")


def _from(epoch: float):  # noqa: ANN202
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)


if __name__ == "__main__":
    main()
