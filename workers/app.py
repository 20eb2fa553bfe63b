"""Worker composition: Dramatiq actors over the delivery queue, plus the sweeper."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from typing import Any

import dramatiq

from core.db import make_engine
from core.errors import Unavailable
from core.queue import DELIVER_ACTOR, RETRIES_EXHAUSTED_ACTOR, Publisher, deliver_queue, make_broker
from core.settings import Settings
from core.store import Store
from workers.delivery import Deliverer
from workers.smtp import SmtpTransport

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)  # a `sending` claim older than this is re-queued by the sweeper


class WorkerApp:
    """Registers the actors on a broker; builds their dependencies lazily in the
    event loop Dramatiq runs async actors on (engines belong to one loop)."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker) -> None:
        self.settings = settings
        self.broker = broker
        self._deliverer: Deliverer | None = None

    def _get_deliverer(self) -> Deliverer:
        if self._deliverer is None:
            store = Store(make_engine(self.settings.database_url))
            transport = SmtpTransport(self.settings)
            self._deliverer = Deliverer(store, transport, self.settings.message_id_domain, LEASE)
        return self._deliverer

    def register(self) -> None:
        settings = self.settings
        queue = deliver_queue(settings)

        async def deliver_email(email_id: int) -> None:
            await self._get_deliverer().deliver(email_id)

        async def delivery_retries_exhausted(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
            email_id = int(message["args"][0])
            retries = retry_info.get("retries", "?")
            await self._get_deliverer().give_up(email_id, f"gave up after {retries} retries")

        dramatiq.actor(
            deliver_email,
            actor_name=DELIVER_ACTOR,
            queue_name=queue,
            broker=self.broker,
            max_retries=settings.max_retries,
            min_backoff=settings.retry_min_backoff_ms,
            max_backoff=settings.retry_max_backoff_ms,
            on_retry_exhausted=RETRIES_EXHAUSTED_ACTOR,
        )
        dramatiq.actor(
            delivery_retries_exhausted,
            actor_name=RETRIES_EXHAUSTED_ACTOR,
            queue_name=queue,
            broker=self.broker,
            max_retries=settings.max_retries,
        )


class Sweeper(threading.Thread):
    """Republishes emails that were stored but never published (broker down at Send,
    crash between commit and publish) and `sending` claims whose lease ran out."""

    def __init__(self, settings: Settings, publisher: Publisher, interval: float = 5.0) -> None:
        super().__init__(name="postwire-sweeper", daemon=True)
        self.settings = settings
        self.publisher = publisher
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        store = Store(make_engine(self.settings.database_url, pool_size=1, max_overflow=0)
                      if not self.settings.is_sqlite else make_engine(self.settings.database_url))
        try:
            while not self.stopping.is_set():
                try:
                    await self.sweep(store)
                except Exception:  # keep sweeping whatever one round hit
                    log.exception("sweep failed")
                await asyncio.to_thread(self.stopping.wait, self.interval)
        finally:
            await store.close()

    async def sweep(self, store: Store) -> int:
        ids = await store.find_stranded(unpublished_for=timedelta(seconds=self.interval))
        for email_id in ids:
            try:
                await self.publisher.publish(email_id)
            except Unavailable:
                log.warning("sweeper: broker unavailable, will retry")
                return 0
            await store.mark_published(email_id)
        if ids:
            log.info("sweeper republished %d emails", len(ids))
        return len(ids)

    def stop(self) -> None:
        self.stopping.set()


class WorkerProcess:
    """A worker process's parts: broker, actors, Dramatiq worker threads, sweeper."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker | None = None) -> None:
        self.settings = settings
        self.broker = broker or make_broker(settings)
        WorkerApp(settings, self.broker).register()
        self.publisher = Publisher(self.broker, settings)
        self.worker = dramatiq.Worker(self.broker, worker_threads=settings.worker_threads, worker_timeout=100)
        self.sweeper = Sweeper(settings, self.publisher)

    def start(self) -> None:
        self.worker.start()
        self.sweeper.start()

    def stop(self) -> None:
        self.sweeper.stop()
        self.worker.stop()
        self.sweeper.join(timeout=10)
        self.broker.close()


def run_worker(settings: Settings, stop: threading.Event) -> None:
    """Serve until `stop` is set."""
    process = WorkerProcess(settings)
    process.start()
    log.info("worker started (queue %s)", deliver_queue(settings))
    try:
        stop.wait()
    finally:
        process.stop()
