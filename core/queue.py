"""The delivery queue contract: which queue and actor carry an email id, and publishing.

The server publishes and the workers consume; both build the broker here so that the
names agree and neither imports the other.
"""

from __future__ import annotations

import asyncio

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AsyncIO

from core.errors import Unavailable
from core.settings import Settings

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


class Publisher:
    """Publishes delivery messages carrying only the email id (confirmed by the broker)."""

    actor = DELIVER_ACTOR

    def __init__(self, broker: dramatiq.Broker, settings: Settings) -> None:
        self.broker = broker
        self.queue = self.queue_name(settings)
        broker.declare_queue(self.queue)

    def queue_name(self, settings: Settings) -> str:
        return deliver_queue(settings)

    def publish_sync(self, email_id: int, delay_ms: int | None = None) -> None:
        message = dramatiq.Message(
            queue_name=self.queue,
            actor_name=self.actor,
            args=(email_id,),
            kwargs={},
            options={},
        )
        try:
            self.broker.enqueue(message, delay=delay_ms)
        except dramatiq.errors.ConnectionError as exc:  # broker down or confirm refused
            raise Unavailable(f"message broker unavailable: {exc}") from exc

    async def publish(self, email_id: int) -> None:
        # pika is blocking; Dramatiq keeps one connection per thread.
        await asyncio.to_thread(self.publish_sync, email_id)


class WebhookPublisher(Publisher):
    """Publishes webhook delivery ids to the webhooks queue."""

    actor = WEBHOOK_ACTOR

    def queue_name(self, settings: Settings) -> str:
        return webhook_queue(settings)
