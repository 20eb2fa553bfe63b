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

import pytest

from postwire_client import Client
from tests.support.ports import free_port
from tests.support.processes import Process, run, wait_serving
from tests.support.dns import DnsServer
from tests.support.smtp import Recorder, SmtpServer
from tests.support.stack import AMQP, PG_ADMIN, REDIS, fresh_database, fresh_queue_prefix, stack_env

__all__ = ["AMQP", "PG_ADMIN", "REDIS", "Stack"]


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="session")
def queue_prefix() -> Iterator[str]:
    with fresh_queue_prefix() as prefix:
        yield prefix


@pytest.fixture(scope="session")
def dns() -> Iterator[DnsServer]:
    """The DNS server of the session stack (and of any test that adds records to it)."""
    with DnsServer() as server:
        yield server


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
    dns: DnsServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The full stack: PostgreSQL, RabbitMQ, Redis, one server, two workers, a scheduler,
    and two SMTP relays in priority order. Timings are short so retries show quickly."""
    logs = tmp_path_factory.mktemp("logs")
    port = free_port()
    env = stack_env(
        database_url=database_url,
        queue_prefix=queue_prefix,
        grpc_port=port,
        smtp_relays=json.dumps(
            [{"host": "127.0.0.1", "port": s.port, "timeout": 2} for s in (smtp, smtp_backup)]
        ),
        dns_servers=json.dumps([dns.host]),
        dns_port=str(dns.port),
        dns_timeout="2",
        sending_host="mta.postwire.test",
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
        # The stack's current processes: tests replace workers and the scheduler.
        for process in [stack.server, *stack.workers, stack.scheduler]:
            process.stop()


@pytest.fixture
def repo() -> Path:
    return Path(__file__).resolve().parents[1]
