"""Session fixtures on the real services: PostgreSQL, RabbitMQ, an in-process SMTP
server, and `postwire server` / `postwire worker` as real processes.

Each session gets its own database and queue prefix, dropped at the end.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import psycopg
import pytest

from postwire_client import Client
from tests.support.processes import Process, base_env, run, wait_serving
from tests.support.smtp import Recorder, SmtpServer, free_port

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
AMQP = "amqp://guest:guest@127.0.0.1:5672/%2F"
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    name = f"postwire_test_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def queue_prefix() -> Iterator[str]:
    prefix = f"test_{secrets.token_hex(4)}"
    yield prefix
    connection = pika.BlockingConnection(pika.URLParameters(AMQP))
    channel = connection.channel()
    for suffix in ("deliver", "deliver.DQ", "deliver.XQ", "dead-letter", "webhooks", "webhooks.DQ", "webhooks.XQ"):
        channel.queue_delete(f"{prefix}.{suffix}")
    connection.close()


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="session")
def smtp_backup() -> Iterator[SmtpServer]:
    """The second relay: used when the first fails transiently."""
    with SmtpServer() as server:
        yield server


@dataclass
class Stack:
    address: str
    env: dict[str, str]
    key_a: str
    key_b: str
    recorder: Recorder
    backup: Recorder
    server: Process
    workers: list[Process]
    scheduler: Process
    logs: Path

    def client(self, key: str | None = None) -> Client:
        return Client(self.address, self.key_a if key is None else key)

    def restart_workers(self) -> None:
        """SIGKILL every worker (mid-send, say) and start fresh ones."""
        for worker in self.workers:
            worker.proc.kill()
            worker.stop()
        self.workers[:] = [
            Process(["worker"], self.env, self.logs / f"worker-{secrets.token_hex(2)}.log") for _ in range(2)
        ]


@pytest.fixture(scope="session")
def stack(
    database_url: str,
    queue_prefix: str,
    smtp: SmtpServer,
    smtp_backup: SmtpServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The full stack: PostgreSQL, RabbitMQ, Redis, one server, two workers, a scheduler,
    and two SMTP relays in priority order. Timings are short so retries show quickly."""
    logs = tmp_path_factory.mktemp("logs")
    port = free_port()
    env = base_env(
        database_url=database_url,
        broker_url=AMQP,
        queue_prefix=queue_prefix,
        secret_key=secrets.token_urlsafe(32),
        grpc_port=str(port),
        redis_url=REDIS,
        smtp_relays=json.dumps(
            [{"host": "127.0.0.1", "port": s.port, "timeout": 2} for s in (smtp, smtp_backup)]
        ),
        max_retries="3",
        retry_min_backoff_ms="200",
        retry_max_backoff_ms="1000",
        retry_lifetime_seconds="6",
        lease_seconds="8",
        domain_concurrency="3",
        publish_grace_seconds="1",
        scheduler_interval="0.2",
        worker_threads="4",
        stream_poll_interval="0.05",
        webhook_allow_private="true",
        webhook_min_backoff_ms="200",
        webhook_max_backoff_ms="1000",
        webhook_retry_lifetime_seconds="30",
        webhook_timeout_seconds="3",
    )
    run(["migrate"], env)
    key_a = run(["keys", "create", "--name", "a", "--account", "account-a"], env).strip()
    key_b = run(["keys", "create", "--name", "b", "--account", "account-b"], env).strip()
    server = Process(["server"], env, logs / "server.log")
    workers = [Process(["worker"], env, logs / f"worker{i}.log") for i in range(2)]
    scheduler = Process(["scheduler"], env, logs / "scheduler.log")
    stack = Stack(f"127.0.0.1:{port}", env, key_a, key_b, smtp.recorder, smtp_backup.recorder, server, workers, scheduler, logs)
    try:
        wait_serving(f"127.0.0.1:{port}", server)
        yield stack
    finally:
        for process in [server, *stack.workers, scheduler]:
            process.stop()


@pytest.fixture
def repo() -> Path:
    return Path(__file__).resolve().parents[1]
