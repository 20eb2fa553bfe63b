"""Building blocks of a throwaway Postwire stack on the real services: a fresh database,
a queue prefix whose queues are deleted afterwards, and the environment every process
of the stack shares (short timings, so retries show quickly).

Used by the session `stack` fixture (tests/conftest.py) and by the chaos suite's own
stack (tests/chaos/conftest.py), which kills and restarts things.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pika
import psycopg

from tests.support.processes import base_env

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS = "redis://127.0.0.1:6379/0"

QUEUE_SUFFIXES = ("deliver", "deliver.DQ", "deliver.XQ", "dead-letter", "webhooks", "webhooks.DQ", "webhooks.XQ")

# The timings of the shared test stack: short backoffs and leases so retries show quickly.
SHORT_TIMINGS: dict[str, str] = {
    "max_retries": "3",
    "retry_min_backoff_ms": "200",
    "retry_max_backoff_ms": "1000",
    "retry_lifetime_seconds": "6",
    "lease_seconds": "8",
    "domain_concurrency": "3",
    "publish_grace_seconds": "1",
    "scheduler_interval": "0.2",
    "republish_after_seconds": "8",
    "worker_threads": "4",
    "stream_poll_interval": "0.05",
    "webhook_allow_private": "true",
    "webhook_min_backoff_ms": "200",
    "webhook_max_backoff_ms": "1000",
    "webhook_retry_lifetime_seconds": "30",
    "webhook_timeout_seconds": "3",
    # The shared stack relays to its recorders and sends from any domain; the domain
    # tests (tests/e2e/test_domains.py) run their own stack with both on.
    "delivery_route": "relay",
    "require_verified_domains": "false",
}


@contextmanager
def fresh_database(prefix: str = "postwire_test") -> Iterator[str]:
    """A new PostgreSQL database (its SQLAlchemy URL), dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_queue_prefix(prefix: str = "test") -> Iterator[str]:
    """A new queue prefix; its queues are deleted afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        yield name
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP))
        channel = connection.channel()
        for suffix in QUEUE_SUFFIXES:
            channel.queue_delete(f"{name}.{suffix}")
        connection.close()


def stack_env(
    *, database_url: str, queue_prefix: str, grpc_port: int, smtp_relays: str, **overrides: str
) -> dict[str, str]:
    """The environment of every process of a test stack: the shared services, fresh
    secrets, SHORT_TIMINGS, then `overrides` (POSTWIRE_<NAME> without the prefix)."""
    return base_env(
        database_url=database_url,
        broker_url=AMQP,
        queue_prefix=queue_prefix,
        secret_key=secrets.token_urlsafe(32),
        grpc_port=str(grpc_port),
        redis_url=REDIS,
        smtp_relays=smtp_relays,
        **{**SHORT_TIMINGS, **overrides},
    )
