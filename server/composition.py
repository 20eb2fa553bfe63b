"""Pieces of the composition shared by the gRPC server (server/app.py) and the SMTP
submission listener (postwire_service/submission_command.py): the accept path of Send
and the rate limiter, built the same way from Settings in both."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from core.delivery.queue import Publisher
from core.domains.senders import VerifiedSenders
from core.emails.service import EmailService
from core.emails.store import Store
from core.emails.validation import SendLimits
from core.events.notify import Notifier
from core.limits.interface import RateLimiter, StreamSlots
from core.limits.local import LocalRateLimiter, LocalStreamSlots
from core.limits.redis_backend import RedisRateLimiter, RedisStreamSlots
from core.returns.unsubscribe import AccountDefaults
from core.settings import Settings
from server.ratelimit import Defaults


def email_service(settings: Settings, engine: AsyncEngine, store: Store, publisher: Publisher,
                  senders: VerifiedSenders, notifier: Notifier | None = None) -> EmailService:
    """The accept path (validation rules, idempotency, durable store, announce)."""
    return EmailService(
        store,
        publisher,
        notifier=notifier,
        poll_interval=settings.stream_poll_interval,
        heartbeat_interval=settings.stream_heartbeat_seconds,
        events_retention=timedelta(days=settings.events_retention_days),
        schedule_horizon=timedelta(days=settings.schedule_horizon_days),
        publish_grace=timedelta(seconds=settings.publish_grace_seconds),
        publish_timeout=settings.publish_timeout_seconds,
        senders=senders if settings.require_verified_domains else None,
        unsubscribe_defaults=AccountDefaults(engine),
    )


def rate_limiters(settings: Settings) -> tuple[RateLimiter, StreamSlots]:
    """Shared through Redis when POSTWIRE_REDIS_URL is set (per process while it is
    unreachable), else per process."""
    if settings.redis_url:
        prefix = f"{settings.queue_prefix}:rl:"
        return (RedisRateLimiter(settings.redis_url, prefix, fallback=LocalRateLimiter()),
                RedisStreamSlots(settings.redis_url, prefix, fallback=LocalStreamSlots()))
    return LocalRateLimiter(), LocalStreamSlots()


def rate_defaults(settings: Settings) -> Defaults:
    return Defaults(
        settings.send_per_minute,
        settings.read_per_minute,
        settings.account_send_per_minute,
        settings.account_read_per_minute,
        settings.max_streams_per_key,
    )


def send_limits(settings: Settings) -> SendLimits:
    return SendLimits(max_recipients=settings.max_recipients, max_total_bytes=settings.max_message_bytes)
