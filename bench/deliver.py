"""Delivery throughput: N emails accepted over gRPC, delivered by worker processes to
Postfix's smtp-sink on loopback; reference in the same run: smtp-source → smtp-sink.

    .venv/bin/python bench/deliver.py [-n 5000] [--workers 2] [--size 2048]

Needs PostgreSQL, RabbitMQ and Redis (make services) and smtp-sink/smtp-source
(scripts/ensure-services.sh --with-postfix). Uses its own database and queue prefix.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from postwire_client import Client  # noqa: E402
from tests.support.processes import Process, base_env, run, wait_serving  # noqa: E402
from tests.support.smtp import free_port  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def smtp_sink(port: int) -> subprocess.Popen[bytes]:
    sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    return subprocess.Popen([sink, "-u", "nobody", f"127.0.0.1:{port}", "1000"])


def reference(n: int, size: int) -> float:
    """smtp-source → smtp-sink: the wire's ceiling for the same messages."""
    port = free_port()
    sink = smtp_sink(port)
    time.sleep(0.3)
    try:
        start = time.perf_counter()
        subprocess.run(
            [shutil.which("smtp-source") or "/usr/sbin/smtp-source", "-s", "16", "-d", "-m", str(n), "-l", str(size),
             f"127.0.0.1:{port}"],
            check=True,
        )
        return n / (time.perf_counter() - start)
    finally:
        sink.terminate()


def postwire(n: int, workers: int, size: int, threads: int) -> tuple[float, float]:
    db = f"postwire_bench_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    port, sink_port = free_port(), free_port()
    sink = smtp_sink(sink_port)
    logs = Path(tempfile.mkdtemp(prefix="postwire-bench-"))
    env = base_env(
        database_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
        queue_prefix=f"bench_{secrets.token_hex(3)}",
        secret_key=secrets.token_urlsafe(32),
        grpc_port=str(port),
        smtp_host="127.0.0.1",
        smtp_port=str(sink_port),
        worker_threads=str(threads),
        domain_concurrency="1000",
    )
    procs: list[Process] = []
    try:
        run(["migrate"], env)
        key = run(["keys", "create", "--name", "bench"], env).strip()
        procs.append(Process(["server"], env, logs / "server.log"))
        procs += [Process(["worker"], env, logs / f"worker{i}.log") for i in range(workers)]
        procs.append(Process(["scheduler"], env, logs / "scheduler.log"))
        wait_serving(f"127.0.0.1:{port}", procs[0])
        body = ("Lorem ipsum dolor sit amet. " * (size // 28 + 1))[:size]

        def send(i: int) -> None:
            client = clients[i % len(clients)]
            client.send(from_address="bench@example.com", to=[f"rcpt{i}@example.com"], subject=f"bench {i}", text_body=body)

        clients = [Client(f"127.0.0.1:{port}", key) for _ in range(8)]
        start = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(send, range(n)))
        accepted = time.perf_counter() - start
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}", autocommit=True) as conn:
            while True:
                done = conn.execute("SELECT count(*) FROM emails WHERE status = 'sent'").fetchone()[0]
                if done >= n:
                    break
                if time.perf_counter() - start > 600:
                    raise SystemExit(f"only {done}/{n} delivered after 600 s; logs in {logs}")
                time.sleep(0.05)
        delivered = time.perf_counter() - start
        for client in clients:
            client.close()
        return n / accepted, n / delivered
    finally:
        for proc in procs:
            proc.stop()
        sink.terminate()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        drop_queues(env["POSTWIRE_QUEUE_PREFIX"])


def drop_queues(prefix: str) -> None:
    import pika

    connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    channel = connection.channel()
    for suffix in ("deliver", "deliver.DQ", "deliver.XQ", "dead-letter"):
        channel.queue_delete(f"{prefix}.{suffix}")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    os.chdir(REPO)
    accept_rate, deliver_rate = postwire(args.n, args.workers, args.size, args.threads)
    ref = reference(args.n, args.size)
    print(f"emails: {args.n} x ~{args.size} B, {args.workers} workers x {args.threads} threads, {os.cpu_count()} cores")
    print(f"postwire accepted:  {accept_rate:8.0f} emails/s")
    print(f"postwire delivered: {deliver_rate:8.0f} emails/s (accept → SENT for all, end to end)")
    print(f"reference smtp-source → smtp-sink: {ref:8.0f} emails/s")
    print(f"ratio postwire/reference: {deliver_rate / ref:.3f}")


if __name__ == "__main__":
    main()
