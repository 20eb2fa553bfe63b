"""A throwaway full stack for benchmarks: its own database and queue prefix, server,
workers and scheduler processes, Postfix's smtp-sink as the relay."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.ports import free_port  # noqa: E402
from tests.support.processes import Process, base_env, run, wait_serving  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def smtp_sink(port: int, host: str = "127.0.0.1", *options: str) -> subprocess.Popen[bytes]:
    """smtp-sink on host:port; `options` go before the address (e.g. "-D", "/tmp/dump")."""
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if not Path(sink).exists():
        raise SystemExit("smtp-sink is not installed: run `bash scripts/ensure-services.sh --with-postfix` "
                         "(make bench does) first")
    return subprocess.Popen([sink, "-u", "nobody", *options, f"{host}:{port}", "1000"])


@dataclass
class BenchStack:
    address: str
    key: str
    database: str
    logs: Path
    pids: dict[str, int]
    env: dict[str, str]
    procs: list[Process]

    def start_workers(self, count: int) -> None:
        """Start `count` more worker processes (e.g. after a backlog was accepted)."""
        for _ in range(count):
            name = f"worker{sum(1 for k in self.pids if k.startswith('worker'))}"
            proc = Process(["worker"], self.env, self.logs / f"{name}.log")
            self.procs.append(proc)
            self.pids[name] = proc.proc.pid

    def stop_workers(self) -> None:
        """Stop every worker process (SIGTERM: Dramatiq finishes or gives back its messages)."""
        for proc in [p for p in self.procs if p.args == ["worker"]]:
            proc.stop()
            self.procs.remove(proc)
        for name in [k for k in self.pids if k.startswith("worker")]:
            del self.pids[name]

    def sql(self) -> psycopg.Connection:
        return psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{self.database}", autocommit=True)


@contextmanager
def bench_stack(workers: int = 2, threads: int = 8, **settings: str) -> Iterator[BenchStack]:
    """`settings` (POSTWIRE_* without the prefix, lower case) override the defaults below:
    relay to the stack's own smtp-sink, any From domain accepted."""
    db = f"postwire_bench_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    port, sink_port = free_port(), free_port()
    sink = smtp_sink(sink_port)
    logs = Path(tempfile.mkdtemp(prefix="postwire-bench-"))
    prefix = f"bench_{secrets.token_hex(3)}"
    values = dict(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
        queue_prefix=prefix,
        secret_key=secrets.token_urlsafe(32),
        grpc_port=str(port),
        smtp_host="127.0.0.1",
        smtp_port=str(sink_port),
        worker_threads=str(threads),
        domain_concurrency="1000",
        send_per_minute="10000000",
        account_send_per_minute="10000000",
        read_per_minute="10000000",
        account_read_per_minute="10000000",
        metrics_port="0",
        worker_metrics_port="0",
        delivery_route="relay",
        require_verified_domains="false",
    )
    env = base_env(**{**values, **settings})
    procs: list[Process] = []
    try:
        run(["migrate"], env)
        key = run(["keys", "create", "--name", "bench"], env).strip()
        procs.append(Process(["server"], env, logs / "server.log"))
        procs += [Process(["worker"], env, logs / f"worker{i}.log") for i in range(workers)]
        procs.append(Process(["scheduler"], env, logs / "scheduler.log"))
        wait_serving(f"127.0.0.1:{port}", procs[0], timeout=120)  # slow to start on busy shared cores
        pids = {"server": procs[0].proc.pid, "scheduler": procs[-1].proc.pid}
        pids.update({f"worker{i}": p.proc.pid for i, p in enumerate(procs[1:-1])})
        yield BenchStack(f"127.0.0.1:{port}", key, db, logs, pids, env, procs)
    finally:
        for proc in procs:
            proc.stop()
        sink.terminate()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        drop_queues(prefix)


def drop_queues(prefix: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    channel = connection.channel()
    for suffix in ("deliver", "deliver.DQ", "deliver.XQ", "dead-letter", "webhooks", "webhooks.DQ", "webhooks.XQ"):
        channel.queue_delete(f"{prefix}.{suffix}")
    connection.close()


def wait_until(predicate, timeout: float = 600.0, interval: float = 0.05) -> None:  # noqa: ANN001
    """Poll `predicate`. A count over the emails table is a scan that competes with what is
    measured (at 50 ms, one PostgreSQL backend busy at 100,000 rows): poll it every 0.5 s
    (rates are read from the rows' timestamps, not from when the poll noticed)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("benchmark timed out")
        time.sleep(interval)
