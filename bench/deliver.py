"""Delivery throughput: N emails accepted over gRPC, delivered by worker processes to
Postfix's smtp-sink on loopback. References in the same run: Postfix itself relaying
the same messages to the same sink (bench/postfix_ref.py), and smtp-source → smtp-sink.

    .venv/bin/python bench/deliver.py [-n 5000] [--workers 2] [--size 2048]

Needs PostgreSQL, RabbitMQ and Redis (make services) and smtp-sink/smtp-source
(scripts/ensure-services.sh --with-postfix). Uses its own database and queue prefix.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from _stack import bench_stack, smtp_sink, wait_until
from postfix_ref import postfix_relay_rate

from postwire_client import Client
from tests.support.smtp import free_port


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
    with bench_stack(workers, threads) as stack:
        body = ("Lorem ipsum dolor sit amet. " * (size // 28 + 1))[:size]
        clients = [Client(stack.address, stack.key) for _ in range(8)]

        def send(i: int) -> None:
            clients[i % len(clients)].send(
                from_address="bench@example.com", to=[f"rcpt{i}@example.com"], subject=f"bench {i}", text_body=body
            )

        start = time.perf_counter()
        with ThreadPoolExecutor(32) as pool:
            list(pool.map(send, range(n)))
        accepted = time.perf_counter() - start
        with stack.sql() as conn:
            wait_until(lambda: conn.execute("SELECT count(*) FROM emails WHERE status = 'sent'").fetchone()[0] >= n)
        delivered = time.perf_counter() - start
        for client in clients:
            client.close()
        return n / accepted, n / delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--size", type=int, default=2048)
    args = parser.parse_args()
    accept_rate, deliver_rate = postwire(args.n, args.workers, args.size, args.threads)
    ref = reference(args.n, args.size)
    port = free_port()
    sink = smtp_sink(port)
    try:
        postfix = postfix_relay_rate(args.n, args.size, port)
    finally:
        sink.terminate()
    print(f"emails: {args.n} x ~{args.size} B, {args.workers} workers x {args.threads} threads, {os.cpu_count()} cores")
    print(f"postwire accepted:  {accept_rate:8.0f} emails/s")
    print(f"postwire delivered: {deliver_rate:8.0f} emails/s (accept → SENT for all, end to end)")
    print(f"reference Postfix relaying to smtp-sink: {postfix:8.0f} emails/s (smtp-source → Postfix queue → sink)")
    print(f"reference smtp-source → smtp-sink (wire ceiling): {ref:8.0f} emails/s")
    print(f"ratio postwire/Postfix: {deliver_rate / postfix:.3f}   postwire/wire: {deliver_rate / ref:.3f}")


if __name__ == "__main__":
    main()
