"""Wake-ups for event streams: one PostgreSQL LISTEN connection per server process fans
out to all of its streams. On SQLite (the embedded mode) streams simply poll."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

import psycopg

from core.events.log import CHANNEL

log = logging.getLogger(__name__)


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

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="postwire-listen")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

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
