"""The webhook actors, on their own queue (`<queue_prefix>.webhooks`) of the same broker."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dramatiq

from core.delivery.queue import (
    WEBHOOK_ACTOR,
    WEBHOOK_RETRIES_EXHAUSTED_ACTOR,
    webhook_queue,
)
from core.settings import Settings
from core.storage.db import make_engine
from core.webhooks.delivery_store import WebhookDeliveryStore
from core.webhooks.signing import SecretBox
from workers.webhooks.delivery import WebhookSender
from workers.webhooks.http import make_client
from workers.webhooks.outcome import WebhookRetryPolicy


def webhook_policy(settings: Settings) -> WebhookRetryPolicy:
    return WebhookRetryPolicy(
        min_backoff=timedelta(milliseconds=settings.webhook_min_backoff_ms),
        max_backoff=timedelta(milliseconds=settings.webhook_max_backoff_ms),
        lifetime=timedelta(seconds=settings.webhook_retry_lifetime_seconds),
        disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
    )


def register_webhook_actors(settings: Settings, broker: dramatiq.Broker) -> None:
    """Declare the queue and register the actors; the sender (engine, HTTP client) is
    built lazily in the event loop Dramatiq runs async actors on."""
    queue = webhook_queue(settings)
    broker.declare_queue(queue)
    sender: list[WebhookSender] = []

    def get() -> WebhookSender:
        if not sender:
            sender.append(
                WebhookSender(
                    WebhookDeliveryStore(make_engine(settings.database_url)),
                    make_client(settings.webhook_allow_private, settings.webhook_timeout_seconds),
                    SecretBox(settings.secret_key.get_secret_value()),
                    webhook_policy(settings),
                    settings.webhook_timeout_seconds,
                )
            )
        return sender[0]

    async def deliver_webhook(delivery_id: int) -> None:
        await get().deliver(delivery_id)

    async def webhook_retries_exhausted(message: dict[str, Any], retry_info: dict[str, Any]) -> None:
        await get().give_up(int(message["args"][0]), f"delivery crashed {retry_info.get('retries', '?')} times")

    # Dramatiq retries only attempts that crash; HTTP outcomes are recorded and
    # rescheduled in the database.
    dramatiq.actor(
        deliver_webhook,
        actor_name=WEBHOOK_ACTOR,
        queue_name=queue,
        broker=broker,
        max_retries=settings.max_retries,
        min_backoff=1_000,
        max_backoff=60_000,
        on_retry_exhausted=WEBHOOK_RETRIES_EXHAUSTED_ACTOR,
    )
    dramatiq.actor(
        webhook_retries_exhausted,
        actor_name=WEBHOOK_RETRIES_EXHAUSTED_ACTOR,
        queue_name=queue,
        broker=broker,
        max_retries=settings.max_retries,
    )
