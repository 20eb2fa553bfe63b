"""Prometheus metrics shared by every process, and the /metrics endpoint.

Each process (server, worker) serves the default registry of prometheus_client on its
own port (`Settings.metrics_port`, `Settings.worker_metrics_port`; 0: off). A port
already taken is logged and skipped: metrics never keep a process from serving.

Here: the email transitions, counted once the transaction that stored their events
commits (`note_events`, called where events are written: core.emails.store.add_events), and
the queue statistics read from PostgreSQL. The RPC, delivery and webhook metrics live
with the code they measure (server/metrics.py, workers/metrics.py); docs/observability.md
lists them all.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from sqlalchemy import event, func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.emails.model import NewEvent, Status
from core.storage.db import emails
from core.times import aware, utcnow

log = logging.getLogger(__name__)

M = TypeVar("M", Counter, Gauge, Histogram)


def metric(factory: Callable[..., M], name: str, documentation: str, labelnames: Sequence[str] = (), **kwargs: Any) -> M:
    """The metric, registered once per process even if its module is imported twice."""
    try:
        return factory(name, documentation, labelnames, **kwargs)
    except ValueError:  # already registered
        return REGISTRY._names_to_collectors[name]  # type: ignore[return-value]


EMAIL_TRANSITIONS = metric(
    Counter,
    "postwire_email_transitions_total",
    "Events committed to the event log, by the state they record (queued, sending, sent, "
    "deferred, bounced, ...); per-recipient events count once per recipient.",
    ["to"],
)

# Event types written by each open transaction, counted when it commits. Keyed by the
# (sync) Connection; the listeners never touch the connection itself, which may be
# invalidated (a cancelled query) when its rollback event fires.
_pending: weakref.WeakKeyDictionary[Connection, list[str]] = weakref.WeakKeyDictionary()


def note_events(conn: AsyncConnection | Connection, new: Sequence[NewEvent]) -> None:
    """Count these events once the transaction writing them commits."""
    if new:
        sync = conn.sync_connection if isinstance(conn, AsyncConnection) else conn
        if sync is not None:
            _pending.setdefault(sync, []).extend(e.type.value for e in new)


def _on_begin(conn: Connection) -> None:
    _pending.pop(conn, None)


def _on_commit(conn: Connection) -> None:
    try:
        for to in _pending.pop(conn, ()):
            EMAIL_TRANSITIONS.labels(to=to).inc()
    except Exception:  # noqa: BLE001 - a metric must never stop (or fail) a commit
        log.warning("could not count committed events", exc_info=True)


event.listen(Engine, "begin", _on_begin)
event.listen(Engine, "rollback", _on_begin)
event.listen(Engine, "commit", _on_commit)


# The endpoint ---------------------------------------------------------------------------


class MetricsEndpoint:
    """Prometheus text on http://host:port/metrics (any path, in fact), on a daemon thread."""

    def __init__(self, host: str, port: int, what: str) -> None:
        self.host, self.port, self.what = host, port, what
        self._server: WSGIServer | None = None

    def start(self) -> bool:
        if not self.port:
            return False
        try:
            self._server, _ = start_http_server(self.port, addr=self.host)
        except OSError as exc:
            log.warning("%s metrics not served: cannot listen on %s:%d (%s)", self.what, self.host, self.port, exc)
            return False
        log.info("%s metrics on http://%s:%d/metrics", self.what, self.host, self.port)
        return True

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# Queue statistics -------------------------------------------------------------------------

WAITING = (Status.QUEUED, Status.DEFERRED)


@dataclass(frozen=True)
class Waiting:
    """Emails waiting in one status: how many, and for how long the longest-waiting one has."""

    count: int
    oldest_seconds: float


async def waiting_emails(engine: AsyncEngine) -> dict[Status, Waiting]:
    """QUEUED and DEFERRED emails: count, and seconds since the longest-waiting one
    entered its status (served by the (status, updated_at) index)."""
    query = (
        select(emails.c.status, func.count(), func.min(emails.c.updated_at))
        .where(emails.c.status.in_([s.value for s in WAITING]))
        .group_by(emails.c.status)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    now = utcnow()
    out = {status: Waiting(0, 0.0) for status in WAITING}
    for status, count, oldest in rows:
        since: datetime | None = aware(oldest)
        out[Status(status)] = Waiting(int(count), max(0.0, (now - since).total_seconds()) if since else 0.0)
    return out
