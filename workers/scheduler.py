"""The scheduler (`postwire scheduler`): the database is the durable queue of what is
due, and this process feeds RabbitMQ from it. Each round it
- releases SENDING claims whose worker died (lease expired),
- publishes due emails: retries whose backoff ended, scheduled sends whose time came,
  and accepted emails the server could not publish (broker down, crash),
- fans new events out to webhook endpoints and publishes due webhook deliveries,
- counts new events into the per-account stats (workers/stats_rollup.py),
- publishes inbound reports the listener could not publish, and again those still
  waiting to be parsed long after (core/returns/inbound.py),
- now and then purges idempotency keys older than 24 hours,
- every minute looks up again the DNS records of sending domains whose re-check is due.
Several schedulers may run: rows are taken with FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import timedelta

from core.delivery.queue import Publisher, WebhookPublisher
from core.delivery.store import DeliveryStore
from core.domains.manager import DomainManager, DomainPolicy
from core.domains.resolver import Resolver
from core.domains.store import DomainStore
from core.errors import Unavailable
from core.events.retention import prune
from core.returns.inbound import InboundStore, ReportPublisher, publish_due
from core.settings import Settings
from core.storage.db import make_engine
from core.times import utcnow
from core.webhooks.signing import SecretBox
from workers.stats_rollup import StatsRollupTick
from workers.webhooks.dispatch import WebhookDispatcher

log = logging.getLogger(__name__)

PURGE_EVERY = 600.0  # seconds between idempotency-key purges and retention pruning
RECHECK_EVERY = 60.0  # seconds between looks for sending domains due a DNS re-check
RECHECK_BATCH = 20


class Scheduler:
    def __init__(self, settings: Settings, publisher: Publisher) -> None:
        self.settings = settings
        self.publisher = publisher
        self.stopping = threading.Event()
        self._last_purge = 0.0
        self._webhooks: WebhookDispatcher | None = None
        self._domains: DomainManager | None = None
        self._last_recheck = 0.0
        self._reports: tuple[InboundStore, ReportPublisher] | None = None
        self._stats: StatsRollupTick | None = None

    async def round(self, store: DeliveryStore) -> int:
        released = await store.release_expired_claims()
        stale = await store.republish_stale(timedelta(seconds=self.settings.republish_after_seconds))
        if stale:
            log.warning("re-queued %d emails whose delivery message never arrived", stale)
        if released:
            log.warning("released %d emails whose worker lease expired", released)
        try:
            published = await store.publish_due(self.publisher.publish)
        except Unavailable:
            log.warning("broker unavailable; will publish due emails when it is back")
            published = 0
        if published:
            log.info("published %d due emails", published)
        if self._webhooks is None:
            self._webhooks = WebhookDispatcher(
                store.engine,
                WebhookPublisher(self.publisher.broker, self.settings).publish,
                retention=timedelta(days=self.settings.events_retention_days),
            )
        await self._webhooks.round()
        if self._stats is None:
            self._stats = StatsRollupTick(store.engine)
        await self._stats.round()
        await self.republish_reports(store)
        if time.monotonic() - self._last_purge > PURGE_EVERY:
            self._last_purge = time.monotonic()
            await store.purge_idempotency_keys()
            now = utcnow()
            pruned = await prune(
                store.engine,
                events_before=now - timedelta(days=self.settings.events_retention_days),
                bodies_before=now - timedelta(days=self.settings.body_retention_days),
            )
            if pruned.events or pruned.bodies or pruned.reports:
                log.info("retention: pruned %d events, %d bodies and %d inbound reports",
                         pruned.events, pruned.bodies, pruned.reports)
        if time.monotonic() - self._last_recheck > min(RECHECK_EVERY, self.settings.domain_recheck_hours * 3600):
            self._last_recheck = time.monotonic()
            await self.recheck_domains(store)
        return published

    async def republish_reports(self, store: DeliveryStore) -> int:
        """Inbound reports never published (after the publish grace) or still not parsed
        (after republish_after_seconds): published again."""
        if self._reports is None:
            self._reports = (InboundStore.from_settings(store.engine, self.settings),
                             ReportPublisher(self.publisher.broker, self.settings))
        reports, publisher = self._reports
        try:
            count = await publish_due(reports, publisher.publish, timedelta(seconds=self.settings.publish_grace_seconds),
                                      timedelta(seconds=self.settings.republish_after_seconds))
        except Unavailable:
            log.warning("broker unavailable; will publish inbound reports when it is back")
            return 0
        if count:
            log.info("published %d inbound reports", count)
        return count

    async def recheck_domains(self, store: DeliveryStore) -> int:
        """Verify again the domains whose `next_check_at` has come; returns how many."""
        if self._domains is None:
            settings = self.settings
            self._domains = DomainManager(
                DomainStore(store.engine), SecretBox(settings.secret_key.get_secret_value()),
                Resolver.from_settings(settings, cache=False),
                DomainPolicy(settings.sending_hostname(), settings.bounce_subdomain,
                             timedelta(hours=settings.domain_recheck_hours)),
            )
        due = await self._domains.store.due(utcnow(), RECHECK_BATCH)
        for domain in due:
            await self._domains.check(domain)
        return len(due)

    async def run(self) -> None:
        store = DeliveryStore(make_engine(self.settings.database_url))
        try:
            while not self.stopping.is_set():
                try:
                    await self.round(store)
                except Exception:  # a database outage, say: keep going
                    log.exception("scheduler round failed")
                await asyncio.to_thread(self.stopping.wait, self.settings.scheduler_interval)
        finally:
            if self._reports is not None:
                await self._reports[1].close()
            await store.close()

    def stop(self) -> None:
        self.stopping.set()


class SchedulerThread(threading.Thread):
    """The scheduler on its own thread and event loop (embedded mode)."""

    def __init__(self, scheduler: Scheduler) -> None:
        super().__init__(name="postwire-scheduler", daemon=True)
        self.scheduler = scheduler

    def run(self) -> None:
        asyncio.run(self.scheduler.run())

    def stop(self) -> None:
        self.scheduler.stop()
        self.join(timeout=10)


def run_scheduler(settings: Settings, stop: threading.Event) -> None:
    """Serve until `stop` is set."""
    from core.delivery.queue import close_broker, make_broker

    broker = make_broker(settings)
    scheduler = Scheduler(settings, Publisher(broker, settings))
    thread = SchedulerThread(scheduler)
    thread.start()
    log.info("scheduler started")
    try:
        stop.wait()
    finally:
        thread.stop()
        close_broker(broker)
