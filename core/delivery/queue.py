"""The delivery queue contract: which queue and actor carry an email id, and publishing.

The server publishes and the workers consume; both build the broker here so that the
names agree and neither imports the other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import aiormq
import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from core.errors import Unavailable
from core.observability import context
from core.settings import Settings
from core.storage.group_commit import GroupCommit

log = logging.getLogger(__name__)

DELIVER_ACTOR = "deliver_email"
RETRIES_EXHAUSTED_ACTOR = "delivery_retries_exhausted"
WEBHOOK_ACTOR = "deliver_webhook"
WEBHOOK_RETRIES_EXHAUSTED_ACTOR = "webhook_retries_exhausted"


def deliver_queue(settings: Settings) -> str:
    return f"{settings.queue_prefix}.deliver"


def webhook_queue(settings: Settings) -> str:
    return f"{settings.queue_prefix}.webhooks"


def make_broker(settings: Settings) -> dramatiq.Broker:
    """RabbitMQ with publisher confirms, or Dramatiq's stub broker for `stub://`.

    Connects lazily: nothing talks to RabbitMQ until the first publish or consume.
    """
    if settings.broker_url.startswith("stub://"):
        broker: dramatiq.Broker = StubBroker()
    else:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=settings.broker_url, confirm_delivery=True)
    broker.add_middleware(AsyncIO())
    return broker


# pika's loggers that report a connection the peer already dropped.
_PIKA_TRANSPORT_LOGGERS = ("pika.adapters.utils.io_services_utils", "pika.adapters.base_connection",
                           "pika.adapters.blocking_connection")


def close_broker(broker: dramatiq.Broker) -> None:
    """Close the broker's connections at shutdown.

    Dramatiq keeps a connection per thread for declaring and publishing, and nothing
    pumps it between uses, so RabbitMQ drops an idle one for missed heartbeats
    (Dramatiq #321). Closing such a connection makes pika log a connection reset, with a
    traceback, at ERROR; at shutdown a connection that is already gone is no error, so
    those loggers are quieted while the broker closes."""
    loggers = [logging.getLogger(name) for name in _PIKA_TRANSPORT_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        broker.close()
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class ConfirmedChannel:
    """One asyncio AMQP connection whose publishes are confirmed by RabbitMQ and
    pipelined: each caller awaits its own confirm while many are in flight, instead of
    one blocking publish-and-confirm at a time per thread (pika, ~1.4k/s per thread).

    Messages are byte-for-byte what Dramatiq's RabbitmqBroker publishes (the encoded
    Message, persistent, mandatory), so Dramatiq workers consume them unchanged.
    """

    def __init__(self, url: str, declare: Callable[[str], None]) -> None:
        self.url = url
        self.declare = declare  # declares a queue the way Dramatiq does (blocking)
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._connecting: asyncio.Lock | None = None
        self._declared: set[str] = set()

    async def _open(self) -> aiormq.abc.AbstractChannel:
        if self._channel is not None and not self._channel.is_closed:
            return self._channel
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._channel is None or self._channel.is_closed:
                await self._close_connection()
                self._connection = await asyncio.wait_for(aiormq.connect(self.url), 10)
                self._channel = await self._connection.channel(publisher_confirms=True)
        return self._channel

    async def _ensure_queue(self, queue: str) -> None:
        if queue not in self._declared:
            await asyncio.to_thread(self.declare, queue)
            self._declared.add(queue)

    async def publish(self, queue: str, body: bytes, *, attempts: int = 3) -> None:
        """Return once RabbitMQ confirmed the message; Unavailable when it cannot."""
        for attempt in range(1, attempts + 1):
            try:
                await self._ensure_queue(queue)
                channel = await self._open()
                await channel.basic_publish(
                    body,
                    routing_key=queue,
                    properties=aiormq.spec.Basic.Properties(delivery_mode=2),
                    mandatory=True,
                    timeout=10,
                )
                return
            except aiormq.exceptions.PublishError:  # returned unroutable: the queue went away
                self._declared.discard(queue)
                error: Exception = Unavailable(f"queue {queue} is missing")
            except Exception as exc:  # noqa: BLE001 - AMQP, socket, timeout or anything else:
                self._channel = None  # a channel that failed once is not trusted again
                error = Unavailable(f"message broker unavailable: {exc!r}")
            if attempt < attempts:
                await asyncio.sleep(0.05 * attempt)
        raise error

    async def _close_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                await connection.close()
            except Exception:  # already gone
                log.debug("closing the AMQP connection failed", exc_info=True)

    async def close(self) -> None:
        await self._close_connection()


class Publisher:
    """Publishes delivery messages carrying only the email id (confirmed by the broker).

    Delivery ids published concurrently share one message carrying the list of ids
    (`args=([id, ...],)`), so a worker takes a whole batch per message; a lone publish
    still goes out at once as `args=(id,)`. Each caller returns once the message holding
    its id is confirmed."""

    actor = DELIVER_ACTOR
    MAX_BATCH = 64

    def __init__(self, broker: dramatiq.Broker, settings: Settings) -> None:
        self.broker = broker
        self.queue = self.queue_name(settings)
        broker.declare_queue(self.queue)
        self.confirmed: ConfirmedChannel | None = None
        self._batches: GroupCommit[tuple[int, dict[str, str]], None] = GroupCommit(
            self._publish_many, parallel=2, max_batch=self.MAX_BATCH
        )
        if isinstance(broker, _rabbitmq_broker_type()):
            self.confirmed = ConfirmedChannel(
                settings.broker_url, lambda queue: broker.declare_queue(queue, ensure=True)
            )

    def queue_name(self, settings: Settings) -> str:
        return deliver_queue(settings)

    def message(self, email_id: int | list[int], options: dict[str, str] | None = None) -> dramatiq.Message:
        return dramatiq.Message(
            queue_name=self.queue,
            actor_name=self.actor,
            args=(email_id,),
            kwargs={},
            options=context.message_options() if options is None else options,  # the request id travels along
        )

    def publish_sync(self, email_id: int, delay_ms: int | None = None) -> None:
        try:
            self.broker.enqueue(self.message(email_id), delay=delay_ms)
        except dramatiq.errors.ConnectionError as exc:  # broker down or confirm refused
            raise Unavailable(f"message broker unavailable: {exc}") from exc

    async def publish(self, email_id: int) -> None:
        if self.confirmed is not None and self.actor == DELIVER_ACTOR:  # other actors take one id
            await self._batches.submit((email_id, context.message_options()))
        elif self.confirmed is not None:
            await self.confirmed.publish(self.queue, self.message(email_id).encode())
        else:  # the stub broker (embedded mode) or another blocking broker
            await asyncio.to_thread(self.publish_sync, email_id)

    async def publish_many(self, email_ids: Sequence[int]) -> None:
        """Publish the ids of one batch (SendBatch, a SendStream group) together: messages
        of up to MAX_BATCH ids, confirmed concurrently."""
        if self.confirmed is None or self.actor != DELIVER_ACTOR:
            for email_id in email_ids:
                await self.publish(email_id)
            return
        options = context.message_options()
        chunks = [email_ids[i : i + self.MAX_BATCH] for i in range(0, len(email_ids), self.MAX_BATCH)]
        await asyncio.gather(*(self._publish_many([(e, options) for e in chunk]) for chunk in chunks))

    async def _publish_many(self, items: Sequence[tuple[int, dict[str, str]]]) -> list[None]:
        """One confirmed message for the batch: the id alone, with its request's
        options, or the list of ids (a batch carries no one request's context)."""
        assert self.confirmed is not None
        ids = [email_id for email_id, _ in items]
        message = self.message(ids[0], items[0][1]) if len(ids) == 1 else self.message(ids, {})
        await self.confirmed.publish(self.queue, message.encode())
        return [None] * len(items)

    async def close(self) -> None:
        if self.confirmed is not None:
            await self.confirmed.close()


def _rabbitmq_broker_type() -> type:
    try:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker
    except ImportError:  # pika missing: only the stub broker is possible
        return type(None)
    return RabbitmqBroker


class WebhookPublisher(Publisher):
    """Publishes webhook delivery ids to the webhooks queue."""

    actor = WEBHOOK_ACTOR

    def queue_name(self, settings: Settings) -> str:
        return webhook_queue(settings)
