"""Worker metrics: SMTP delivery attempts, queued messages handled, webhook attempts, and
the queue depth (sampled from PostgreSQL and RabbitMQ on a thread of its own).

    postwire_delivery_attempts_total{outcome, reply_class}   one per recipient per SMTP attempt
    postwire_smtp_transaction_seconds                         one SMTP transaction, relays tried included
    postwire_dkim_sign_seconds, postwire_dkim_signatures_total  DKIM signing of outgoing messages
    postwire_worker_messages_total{actor, outcome}            done / error / skipped
    postwire_worker_message_seconds{actor}
    postwire_webhook_attempts_total{outcome, status_class}
    postwire_inbound_reports_total{state}                     inbound reports parsed, by resulting state
    postwire_emails_waiting{status}                           QUEUED and DEFERRED emails
    postwire_emails_waiting_oldest_seconds{status}
    postwire_broker_queue_messages{queue}                     ready messages, RabbitMQ
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import dramatiq
import pika
import pika.exceptions
from dramatiq.middleware import Middleware
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from core.delivery.queue import deliver_queue, webhook_queue
from core.observability.metrics import MetricsEndpoint, metric, waiting_emails
from core.settings import Settings
from core.storage.db import make_engine
from workers.delivery.classify import Kind, classify, classify_reply
from workers.delivery.mx import MxTransport
from workers.delivery.smtp import GroupOutcome, SmtpTransport, TransactionResult
from workers.stats_rollup import sample_lag

log = logging.getLogger(__name__)

DELIVERY_ATTEMPTS = metric(
    Counter,
    "postwire_delivery_attempts_total",
    "Recipients handed to SMTP, by outcome (sent, deferred, bounced, failed) and the class of"
    " the SMTP reply (2xx, 4xx, 5xx, none: no reply, such as a refused connection or a timeout).",
    ["outcome", "reply_class"],
)
SMTP_SECONDS = metric(
    Histogram,
    "postwire_smtp_transaction_seconds",
    "Time of one SMTP transaction (every relay it tried), successful or not.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
MESSAGES = metric(
    Counter,
    "postwire_worker_messages_total",
    "Queued messages a worker processed, by actor and outcome (done, error: raised and left to"
    " Dramatiq's retries, skipped).",
    ["actor", "outcome"],
)
MESSAGE_SECONDS = metric(
    Histogram,
    "postwire_worker_message_seconds",
    "Time to process one queued message, by actor.",
    ["actor"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
WEBHOOK_ATTEMPTS = metric(
    Counter,
    "postwire_webhook_attempts_total",
    "Webhook POSTs, by recorded outcome and the class of the HTTP status (none: no answer).",
    ["outcome", "status_class"],
)
EMAILS_WAITING = metric(
    Gauge, "postwire_emails_waiting", "Emails waiting for delivery, by status (queued, deferred).", ["status"]
)
OLDEST_WAITING = metric(
    Gauge,
    "postwire_emails_waiting_oldest_seconds",
    "Seconds since the longest-waiting email of the status entered it.",
    ["status"],
)
BROKER_MESSAGES = metric(
    Gauge,
    "postwire_broker_queue_messages",
    "Messages ready in a RabbitMQ queue (`.DQ`: delayed retries of crashed attempts).",
    ["queue"],
)

DKIM_SECONDS = metric(
    Histogram,
    "postwire_dkim_sign_seconds",
    "Time to DKIM-sign one message (every signature it carries).",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
)
INBOUND_REPORTS = metric(
    Counter,
    "postwire_inbound_reports_total",
    "Inbound reports (bounces, complaints, unsubscribe mail) parsed, by the state they ended in (bounce, delay,"
    " complaint, unsubscribe, ignored, unparseable).",
    ["state"],
)
DKIM_SIGNATURES = metric(Counter, "postwire_dkim_signatures_total", "DKIM signatures added to outgoing messages.")

_OUTCOME = {Kind.TRANSIENT: "deferred", Kind.PERMANENT: "bounced", Kind.FAILED: "failed"}


def reply_class(code: int | None) -> str:
    return f"{code // 100}xx" if code and 200 <= code < 600 else "none"


class MeteredTransport(SmtpTransport):
    """The SMTP transport, counting what happens to each recipient."""

    async def send(
        self, sender: str, recipients: list[str], data: bytes, *, smtputf8: bool = False
    ) -> TransactionResult:
        started = time.perf_counter()
        try:
            result = await super().send(sender, recipients, data, smtputf8=smtputf8)
        except BaseException as exc:
            SMTP_SECONDS.observe(time.perf_counter() - started)
            try:
                verdict = classify(exc)
            except TypeError:  # not an SMTP outcome (cancelled, a bug): not an attempt
                raise exc from None
            DELIVERY_ATTEMPTS.labels(_OUTCOME[verdict.kind], reply_class(verdict.code)).inc(len(recipients))
            raise
        SMTP_SECONDS.observe(time.perf_counter() - started)
        if result.accepted:
            DELIVERY_ATTEMPTS.labels("sent", reply_class(result.data_code)).inc(len(result.accepted))
        for code, message in result.refused.values():
            DELIVERY_ATTEMPTS.labels(_OUTCOME[classify_reply(code, message).kind], reply_class(code)).inc()
        return result


class MeteredMxTransport(MxTransport):
    """The direct-to-MX transport, counting what happens to each recipient."""

    async def deliver(
        self, sender: str, recipients: list[str], data: bytes, *, smtputf8: bool = False
    ) -> list[GroupOutcome]:
        started = time.perf_counter()
        try:
            outcomes = await super().deliver(sender, recipients, data, smtputf8=smtputf8)
        finally:
            SMTP_SECONDS.observe(time.perf_counter() - started)
        for outcome in outcomes:
            if outcome.result is None:
                verdict = classify(outcome.error)  # type: ignore[arg-type]
                DELIVERY_ATTEMPTS.labels(_OUTCOME[verdict.kind], reply_class(verdict.code)).inc(len(outcome.recipients))
                continue
            result = outcome.result
            if result.accepted:
                DELIVERY_ATTEMPTS.labels("sent", reply_class(result.data_code)).inc(len(result.accepted))
            for code, message in result.refused.values():
                DELIVERY_ATTEMPTS.labels(_OUTCOME[classify_reply(code, message).kind], reply_class(code)).inc()
        return outcomes


def dkim_signed(seconds: float, signatures: int) -> None:
    """Count and time one message's DKIM signing (workers.delivery.actor)."""
    DKIM_SECONDS.observe(seconds)
    DKIM_SIGNATURES.inc(signatures)


def webhook_attempt(outcome: str, status_code: int | None) -> None:
    """Count one webhook POST (workers.webhooks.delivery)."""
    WEBHOOK_ATTEMPTS.labels(outcome, reply_class(status_code)).inc()


class MessageMetrics(Middleware):
    """Counts and times the messages a worker processes."""

    def __init__(self) -> None:
        self._started = threading.local()  # a worker thread processes one message at a time

    def before_process_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        self._started.at = time.perf_counter()

    def after_process_message(
        self, broker: dramatiq.Broker, message: dramatiq.Message, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        started = getattr(self._started, "at", None)
        if started is not None:
            MESSAGE_SECONDS.labels(message.actor_name).observe(time.perf_counter() - started)
        MESSAGES.labels(message.actor_name, "done" if exception is None else "error").inc()

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.Message) -> None:
        MESSAGES.labels(message.actor_name, "skipped").inc()


class QueueSampler(threading.Thread):
    """Reads the queue depth every `interval` seconds: from PostgreSQL (its own engine on
    its own event loop) and, with RabbitMQ, the ready messages of the worker's queues
    (passive declares on one connection). A reading that fails removes the gauges
    until the next one succeeds, rather than showing stale values."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="postwire-queue-metrics", daemon=True)
        self.settings = settings
        self.interval = settings.queue_metrics_interval
        self.stopping = threading.Event()
        deliver = deliver_queue(settings)
        self.queues = (deliver, f"{deliver}.DQ", webhook_queue(settings))
        self.rabbitmq = settings.broker_url.startswith("amqp")
        self._connection: pika.BlockingConnection | None = None
        self._failing: set[str] = set()

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        engine = make_engine(self.settings.database_url, pool_size=1, max_overflow=0)
        try:
            while not self.stopping.is_set():
                self._reading("database", lambda: loop.run_until_complete(self._database(engine)), EMAILS_WAITING, OLDEST_WAITING)
                if self.rabbitmq:
                    self._reading("broker", self._broker, BROKER_MESSAGES)
                self.stopping.wait(self.interval)
        finally:
            loop.run_until_complete(engine.dispose())
            loop.close()
            self._close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)

    def _reading(self, what: str, read: Any, *gauges: Gauge) -> None:
        try:
            read()
        except Exception as exc:
            for gauge in gauges:
                gauge.clear()
            if what not in self._failing:
                log.warning("queue metrics: cannot read the %s (%s); will keep trying", what, exc)
                self._failing.add(what)
            if what == "broker":
                self._close()
            return
        if what in self._failing:
            log.info("queue metrics: reading the %s again", what)
            self._failing.discard(what)

    async def _database(self, engine: AsyncEngine) -> None:
        for status, waiting in (await waiting_emails(engine)).items():
            EMAILS_WAITING.labels(status.value).set(waiting.count)
            OLDEST_WAITING.labels(status.value).set(waiting.oldest_seconds)
        await sample_lag(engine)

    def _broker(self) -> None:
        if self._connection is None or not self._connection.is_open:
            self._connection = pika.BlockingConnection(pika.URLParameters(self.settings.broker_url))
        for queue in self.queues:
            channel = self._connection.channel()
            try:
                declared = channel.queue_declare(queue, passive=True)
                BROKER_MESSAGES.labels(queue).set(declared.method.message_count)
            except pika.exceptions.ChannelClosedByBroker:  # not declared yet: nothing in it
                BROKER_MESSAGES.labels(queue).set(0)
            finally:
                if channel.is_open:
                    channel.close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:
                pass


class WorkerMetrics:
    """A worker process's /metrics endpoint and queue sampler."""

    def __init__(self, settings: Settings) -> None:
        self.endpoint = MetricsEndpoint(settings.metrics_host, settings.worker_metrics_port, "worker")
        self.sampler = QueueSampler(settings) if settings.worker_metrics_port and settings.queue_metrics_interval > 0 else None

    def start(self) -> None:
        if self.endpoint.start() and self.sampler is not None:
            self.sampler.start()

    def stop(self) -> None:
        if self.sampler is not None and self.sampler.is_alive():
            self.sampler.stop()
        self.endpoint.stop()
