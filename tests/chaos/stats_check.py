"""The ledger's stats check: once a fault's emails are all terminal, GetStats' totals
for the account (over the whole run) must equal the counts of the account's events in
the log, type by type: the rollup counted every event once, across the kills and
restarts of the fault."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg

from postwire_client import Client

# Event type -> the counter it adds to (core/stats/mapping.py; opens and clicks aside).
COUNTER_OF = {"queued": "sent", "sent": "delivered", "bounced": "bounced_hard", "delayed": "bounced_soft",
              "complained": "complained", "unsubscribed": "unsubscribed", "suppressed": "suppressed",
              "failed": "failed", "deferred": "deferred"}


def logged(pg_url: str, account: str) -> Counter[str]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT e.type, count(*) FROM events e JOIN accounts a ON a.id = e.account_id WHERE a.name = %s"
            " GROUP BY e.type", (account,)
        ).fetchall()
    return Counter({COUNTER_OF[t]: n for t, n in rows if t in COUNTER_OF})


def counted(address: str, key: str) -> dict[str, int]:
    now = datetime.now(UTC)
    with Client(address, key) as client:
        totals = client.get_stats(start=now - timedelta(days=1), end=now + timedelta(hours=1),
                                  granularity="hour").totals
    return {f.name: v for f, v in totals.ListFields() if v}


def stats_problems(address: str, key: str, pg_url: str, account: str, timeout: float = 20.0) -> list[str]:
    """[] once the stats equal the log (the rollup runs every scheduler round), else why not."""
    deadline = time.monotonic() + timeout
    while True:
        expected, got = dict(logged(pg_url, account)), counted(address, key)
        if got == expected:
            return []
        if time.monotonic() > deadline:
            return [f"stats differ from the event log after {timeout:.0f}s: GetStats {got}, log {expected}"]
        time.sleep(0.5)
