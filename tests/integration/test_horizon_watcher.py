"""The process's horizon watcher (core.events.notify.PgNotifier.wait_horizon): a stream
whose next events wait behind an older transaction still in flight is woken as soon as
that transaction ends, although it commits without a NOTIFY of its own."""

from __future__ import annotations

import asyncio
import time

import psycopg

from core.events.notify import PgNotifier

CONNINFO = "postgresql://postgres@127.0.0.1:5432/postgres"


async def test_a_held_back_waiter_wakes_when_the_older_transaction_ends() -> None:
    notifier = PgNotifier(CONNINFO)
    older = await psycopg.AsyncConnection.connect(CONNINFO)
    try:
        await older.execute("SELECT pg_current_xact_id()")  # an open transaction with an xid
        async with await psycopg.AsyncConnection.connect(CONNINFO, autocommit=True) as younger:
            row = await (await younger.execute("SELECT pg_current_xact_id()::text::bigint")).fetchone()
        younger_txid = int(row[0])
        waiting = asyncio.ensure_future(notifier.wait_horizon(1, younger_txid, timeout=5.0))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the older transaction is still in flight
        started = time.monotonic()
        await older.commit()  # no NOTIFY
        assert await asyncio.wait_for(waiting, 2.0) is True
        assert time.monotonic() - started < 0.5
    finally:
        await older.close()
        await notifier.stop()


async def test_the_account_s_new_events_also_wake_a_held_back_waiter() -> None:
    notifier = PgNotifier(CONNINFO)
    try:
        waiting = asyncio.ensure_future(notifier.wait_horizon(7, 2**62, timeout=5.0))
        await asyncio.sleep(0.05)
        notifier.wake(7)
        assert await asyncio.wait_for(waiting, 1.0) is True
    finally:
        await notifier.stop()
