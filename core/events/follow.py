"""Following an account's event log: stored events after a position, then new ones as
they commit (woken by the process's one LISTEN connection, core/events/notify.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from core.emails.model import EventRecord, EventType
from core.errors import OutOfRange, Unavailable
from core.events import log as event_log
from core.events.cursor import START, Position
from core.events.notify import Notifier
from core.storage.db import database_errors_as_unavailable
from core.times import utcnow

PAGE = 500  # events read per query
HOLDBACK_MIN, HOLDBACK_MAX = 0.005, 0.2  # re-read delays while events are held back


@dataclass(frozen=True)
class Heartbeat:
    """A keep-alive for an idle stream."""

    at: datetime


class _Store(Protocol):
    engine: AsyncEngine


class Followed(Protocol):
    """What a stream needs from the service that owns it (read at every turn, so
    settings changed after construction apply)."""

    store: _Store
    notifier: Notifier
    stopping: asyncio.Event
    poll_interval: float
    heartbeat_interval: float


async def follow(
    service: Followed,
    account_id: int,
    *,
    after: Position | int = START,
    from_now: bool = False,
    message_ids: Sequence[str] = (),
    types: Sequence[EventType] = (),
    tags: Sequence[str] = (),
) -> AsyncIterator[EventRecord | Heartbeat]:
    """Stored events after `after`, then new ones as they commit, until the caller
    stops or the server shuts down (Unavailable: resume from the last cursor).
    Reads page by page from the database, so a slow reader costs no memory; idle
    streams get a Heartbeat every `heartbeat_interval` seconds."""
    position = await start_position(service, account_id, after, from_now)
    last_activity = time.monotonic()
    backoff = HOLDBACK_MIN
    while True:
        if service.stopping.is_set():
            raise Unavailable("server shutting down; reconnect with after=<the last cursor you received>")
        async with database_errors_as_unavailable(), service.store.engine.connect() as conn:
            batch, held_back = await event_log.read(
                conn, account_id, position, message_ids=message_ids, types=types, tags=tags, limit=PAGE
            )
        for event in batch:
            position = Position(event.txid, event.id)
            yield event
        if batch:
            last_activity = time.monotonic()
        if len(batch) == PAGE:
            continue
        if held_back is not None:  # younger events wait behind an older transaction in flight
            # Re-read as soon as every transaction older than them has ended (the
            # process's horizon watcher sees it within milliseconds), at the account's
            # next events, or after the backoff, which grows while nothing comes through.
            if batch:
                backoff = HOLDBACK_MIN
            await service.notifier.wait_horizon(account_id, held_back, backoff)
            backoff = min(backoff * 2, HOLDBACK_MAX)
            continue
        backoff = HOLDBACK_MIN
        idle = time.monotonic() - last_activity
        if idle >= service.heartbeat_interval:
            yield Heartbeat(utcnow())
            last_activity = time.monotonic()
            continue
        await service.notifier.wait(account_id, min(service.poll_interval, service.heartbeat_interval - idle))


async def start_position(service: Followed, account_id: int, after: Position | int, from_now: bool) -> Position:
    async with database_errors_as_unavailable(), service.store.engine.connect() as conn:
        if isinstance(after, int):
            after = await event_log.position_of(conn, after)
        if after == START:
            return await event_log.head(conn, account_id) if from_now else START
        if after < await event_log.pruned_through(conn):
            raise OutOfRange(
                "this cursor is older than the event retention period and events after it were "
                "pruned; start again without a cursor (or with from_now)"
            )
        return after
