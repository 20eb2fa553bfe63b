"""Wake-ups for event streams: one PostgreSQL LISTEN connection per server process fans
out to all of its streams, and one horizon watcher per process wakes the streams whose
next events wait behind an older transaction still in flight (core/events/log.py): those
commit without a NOTIFY of their own, so without it a stream would sleep its backoff.
On SQLite (the embedded mode) streams simply poll."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import psycopg

from core.events.log import CHANNEL

log = logging.getLogger(__name__)

HORIZON_SQL = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
HORIZON_POLL = 0.003  # seconds between horizon reads while any stream waits on it
HOLDBACK_RETRY = 0.1  # after a failed read (the streams' own backoff still runs)


class Notifier:
    """Streams wait on their account; without LISTEN they just time out (a poll)."""

    def __init__(self) -> None:
        self._waiters: dict[int, set[asyncio.Event]] = defaultdict(set)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def wake(self, account_id: int) -> None:
        for waiter in self._waiters.get(account_id, ()):
            waiter.set()

    def wake_all(self) -> None:
        for waiters in self._waiters.values():
            for waiter in waiters:
                waiter.set()

    async def wait_horizon(self, account_id: int, txid: int, timeout: float) -> bool:
        """Until events of transaction `txid`, held back behind older transactions in
        flight, may be read (True), the account has new events (True), or the timeout."""
        return await self.wait(account_id, timeout)

    async def wait(self, account_id: int, timeout: float) -> bool:
        """Until the account has new events (True) or the timeout passes (False)."""
        waiter = asyncio.Event()
        self._waiters[account_id].add(waiter)
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters[account_id].discard(waiter)
            if not self._waiters[account_id]:
                del self._waiters[account_id]


class PgNotifier(Notifier):
    """LISTEN postwire_events on its own connection; reconnects with backoff."""

    def __init__(self, conninfo: str) -> None:
        super().__init__()
        self.conninfo = conninfo
        self._task: asyncio.Task[None] | None = None
        self._horizon: dict[asyncio.Event, int] = {}  # waiter -> the txid it waits to pass
        self._watcher: asyncio.Task[None] | None = None
        self._watch_conn: psycopg.AsyncConnection | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="postwire-listen")

    async def stop(self) -> None:
        for task in (self._task, self._watcher):
            if task:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        if self._watch_conn is not None:
            await self._watch_conn.close()
            self._watch_conn = None

    async def wait_horizon(self, account_id: int, txid: int, timeout: float) -> bool:
        waiter = asyncio.Event()
        self._horizon[waiter] = txid
        self._waiters[account_id].add(waiter)
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name="postwire-horizon")
        try:
            await asyncio.wait_for(waiter.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._horizon.pop(waiter, None)
            self._waiters[account_id].discard(waiter)
            if not self._waiters[account_id]:
                del self._waiters[account_id]

    async def _watch(self) -> None:
        """While streams wait on the horizon: read it every HORIZON_POLL seconds (one
        query for the whole process) and wake those it has passed."""
        try:
            while self._horizon:
                try:
                    if self._watch_conn is None or self._watch_conn.closed:
                        self._watch_conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True)
                    cursor = await self._watch_conn.execute(HORIZON_SQL)
                    row = await cursor.fetchone()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - streams fall back to their backoff
                    log.debug("horizon watcher: %s", exc)
                    if self._watch_conn is not None:
                        await self._watch_conn.close()
                    self._watch_conn = None
                    await asyncio.sleep(HOLDBACK_RETRY)
                    continue
                horizon = int(row[0]) if row and row[0] is not None else 0
                for waiter, txid in list(self._horizon.items()):
                    if txid < horizon:
                        waiter.set()
                await asyncio.sleep(HORIZON_POLL)
        finally:
            self._watcher = None

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    self.wake_all()  # anything missed while disconnected
                    async for note in conn.notifies():
                        if note.payload.isdigit():
                            self.wake(int(note.payload))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database restart, network fault: streams poll meanwhile
                log.warning("event listener lost its connection (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def make_notifier(database_url: str) -> Notifier:
    if database_url.startswith("postgresql"):
        return PgNotifier(database_url.replace("postgresql+psycopg://", "postgresql://", 1))
    return Notifier()
