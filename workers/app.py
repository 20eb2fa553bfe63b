"""Worker composition: Dramatiq actors over the delivery queue, and on the webhooks
queue the webhook and inbound-report actors."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import timedelta
from typing import Any

import dramatiq

from core.delivery.deadletter import DeadLetters
from core.delivery.queue import (
    DELIVER_ACTOR,
    RETRIES_EXHAUSTED_ACTOR,
    close_broker,
    deliver_queue,
    make_broker,
)
from core.delivery.store import DeliveryStore
from core.domains.resolver import Resolver
from core.domains.senders import SigningKeys
from core.domains.store import DomainStore
from core.observability.tracing import setup as setup_tracing
from core.returns.paths import ReturnPaths
from core.returns.tokens import Tokens
from core.settings import Settings
from core.storage.db import make_engine
from core.tracking.apply import Tracker
from core.tracking.defaults import TrackingDefaults
from core.tracking.tokens import TrackingTokens
from core.webhooks.signing import SecretBox
from workers.delivery.actor import Deliverer, RetryPolicy
from workers.delivery.batch import deliver_batch
from workers.delivery.domain_limits import DomainLimiter
from workers.feedback.actor import register_feedback_actors
from workers.log_context import LogContext
from workers.metrics import (
    MessageMetrics,
    MeteredMxTransport,
    MeteredTransport,
    WorkerMetrics,
    dkim_signed,
)
from workers.tracing import MessageTracing, TracedDeliverer, TracedTransport
from workers.webhooks.actor import register_webhook_actors

log = logging.getLogger(__name__)


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        min_backoff=timedelta(milliseconds=settings.retry_min_backoff_ms),
        max_backoff=timedelta(milliseconds=settings.retry_max_backoff_ms),
        lifetime=timedelta(seconds=settings.retry_lifetime_seconds),
        lease=timedelta(seconds=settings.lease_seconds),
    )


def return_paths(settings: Settings) -> ReturnPaths:
    """VERP envelope senders (`b+<token>@bounces.<verified domain>`, read back by the
    inbound listener) and the unsubscribe headers."""
    return ReturnPaths(
        Tokens(settings.secret_key.get_secret_value()),
        bounce_label=settings.bounce_subdomain,
        fallback_domain=settings.return_path_domain,
        public_url=settings.public_url,
    )


def tracker(settings: Settings, engine: Any) -> Tracker:
    """Open pixels and tracked links through POSTWIRE_TRACKING_BASE_URL (or the public URL)."""
    return Tracker(TrackingTokens(settings.secret_key.get_secret_value()), settings.tracking_url(settings.public_url),
                   TrackingDefaults(engine), settings.tracking_text_links)


class WorkerApp:
    """Registers the actors on a broker; builds their dependencies lazily in the
    event loop Dramatiq runs async actors on (engines and pools belong to one loop)."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker) -> None:
        self.settings = settings
        self.broker = broker
        self._deliverer: Deliverer | None = None

    def deliverer(self) -> Deliverer:
        if self._deliverer is None:
            settings = self.settings
            traced = bool(settings.otel_endpoint)  # spans for the attempt and the SMTP transaction
            engine = make_engine(settings.database_url)
            if settings.delivery_route == "mx":  # straight to each recipient domain's MX hosts
                transport: Any = MeteredMxTransport(settings, Resolver.from_settings(settings))
            else:  # the relay(s): an SmtpTransport that counts attempts
                transport = (TracedTransport if traced else MeteredTransport)(settings)
            self._deliverer = (TracedDeliverer if traced else Deliverer)(
                DeliveryStore(engine),
                transport,
                DomainLimiter(settings),
                DeadLetters(settings),
                settings.message_id_domain,
                retry_policy(settings),
                SigningKeys(DomainStore(engine), SecretBox(settings.secret_key.get_secret_value())),
                dkim_signed,
                return_paths(settings),
                tracker=tracker(settings, engine),
            )
        return self._deliverer

    async def _enqueue_alone(self, email_id: int) -> None:
        """A message of its own for an email whose attempt crashed inside a batch, so
        Dramatiq's retries and their exhaustion concern that email alone."""
        message = dramatiq.Message(queue_name=deliver_queue(self.settings), actor_name=DELIVER_ACTOR,
                                   args=(email_id,), kwargs={}, options={})
        await asyncio.to_thread(self.broker.enqueue, message, delay=1_000)

    def register(self) -> None:
        settings = self.settings
        queue = deliver_queue(settings)

        async def deliver_email(email_id: int | list[int]) -> None:
            if isinstance(email_id, list):  # a batch the server's publisher coalesced
                await deliver_batch(self.deliverer(), email_id, self._enqueue_alone)
            else:
                await self.deliverer().deliver(email_id)

        async def delivery_retries_exhausted(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
            retries = retry_info.get("retries", "?")
            arg = message["args"][0]
            for email_id in arg if isinstance(arg, list) else [arg]:
                # A batch's emails that were deferred or scheduled in the meantime keep their course.
                await self.deliverer().give_up(int(email_id), f"delivery crashed {retries} times",
                                               pending_only=isinstance(arg, list))

        # Dramatiq retries only attempts that crash (a bug, an outage); SMTP outcomes,
        # including transient ones, are recorded and rescheduled in the database.
        dramatiq.actor(
            deliver_email,
            actor_name=DELIVER_ACTOR,
            queue_name=queue,
            broker=self.broker,
            max_retries=settings.max_retries,
            min_backoff=1_000,
            max_backoff=60_000,
            on_retry_exhausted=RETRIES_EXHAUSTED_ACTOR,
        )
        dramatiq.actor(
            delivery_retries_exhausted,
            actor_name=RETRIES_EXHAUSTED_ACTOR,
            queue_name=queue,
            broker=self.broker,
            max_retries=settings.max_retries,
        )
        register_webhook_actors(settings, self.broker)
        register_feedback_actors(settings, self.broker)  # on the webhooks queue too


class WorkerProcess:
    """A worker process's parts: broker, actors and Dramatiq worker threads."""

    def __init__(self, settings: Settings, broker: dramatiq.Broker | None = None) -> None:
        self.settings = settings
        self.broker = broker or make_broker(settings)
        for middleware in (LogContext(), MessageMetrics()):
            self.broker.add_middleware(middleware)
        if settings.otel_endpoint:  # a span per message, continuing the RPC's trace
            self.broker.add_middleware(MessageTracing())
        WorkerApp(settings, self.broker).register()
        self.worker = dramatiq.Worker(self.broker, worker_threads=settings.worker_threads, worker_timeout=100)

    def start(self) -> None:
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()
        close_broker(self.broker)


def run_worker(settings: Settings, stop: threading.Event) -> None:
    """Serve until `stop` is set."""
    tracing = setup_tracing(settings, "worker")  # off unless POSTWIRE_OTEL_ENDPOINT
    process = WorkerProcess(settings)
    process.start()
    metrics = WorkerMetrics(settings)
    metrics.start()
    log.info("worker started (queue %s)", deliver_queue(settings))
    try:
        stop.wait()
    finally:
        process.stop()
        metrics.stop()
        tracing.shutdown()  # exports the last spans
