"""Delivery throughput: N emails accepted over gRPC, delivered by worker processes to
Postfix's smtp-sink on loopback. References in the same run: Postfix itself relaying
the same messages to the same sink (bench/postfix_ref.py), and smtp-source → smtp-sink.

    .venv/bin/python bench/deliver.py [-n 20000] [--workers 2] [--size 2048]

Needs PostgreSQL, RabbitMQ and Redis (make services) and smtp-sink/smtp-source
(scripts/ensure-services.sh --with-postfix). Uses its own database and queue prefix.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from typing import Any

import grpc
from _stack import bench_stack, smtp_sink, wait_until
from accept import cpu_seconds, percentiles, rss_mb, server_children
from postfix_ref import postfix_relay_rate

from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc
from tests.support.ports import free_port


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


async def _accept(stack, n: int, body: str, concurrency: int = 64, rate: float | None = None) -> float:  # noqa: ANN001
    """Send n emails over gRPC (closed loop, or open loop at `rate`/s); returns emails/s."""
    async with grpc.aio.insecure_channel(stack.address) as channel:
        stub = email_service_pb2_grpc.EmailServiceStub(channel)
        metadata = (("x-api-key", stack.key),)
        failures: list[grpc.StatusCode] = []

        async def one(i: int) -> None:
            request = pb.SendRequest(from_address="bench@example.com", to=[f"rcpt{i}@example.com"],
                                     subject=f"bench {i}", text_body=body)
            try:
                await stub.Send(request, metadata=metadata, timeout=60)
            except grpc.aio.AioRpcError as exc:  # an overloaded machine: counted, not fatal
                failures.append(exc.code())

        start = time.perf_counter()
        if rate is None:
            queue = iter(range(n))

            async def client() -> None:
                for i in queue:
                    await one(i)

            await asyncio.gather(*(client() for _ in range(concurrency)))
        else:
            tasks = []
            for i in range(n):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        if failures:
            print(f"  {len(failures)} of {n} Sends failed: {sorted({c.name for c in failures})}")
        return n / (time.perf_counter() - start)


def _sent_span(stack) -> tuple[int, float]:  # noqa: ANN001
    with stack.sql() as conn:
        count, first, last = conn.execute(
            "SELECT count(*), min(sent_at), max(sent_at) FROM emails WHERE status = 'sent'"
        ).fetchone()
    return count, (last - first).total_seconds()


def postwire(n: int, workers: int, size: int, threads: int, rates: list[float], seconds: float) -> dict[str, Any]:
    """Delivery throughput: n emails accepted while no worker runs, then drained by
    `workers` processes (emails/s between the first and the last SENT). Then latency:
    emails offered at each of `rates`/s for `seconds` with the workers running, accept →
    SENT percentiles from the server's own timestamps (created_at → sent_at), and the
    part of it spent waiting for a worker (created_at → the SENDING event)."""
    body = ("Lorem ipsum dolor sit amet. " * (size // 28 + 1))[:size]
    figures: dict[str, Any] = {"latency": []}
    with bench_stack(0, threads, server_processes="2") as stack:
        figures["accepted"] = asyncio.run(_accept(stack, n, body))
        start = time.perf_counter()
        stack.start_workers(workers)
        with stack.sql() as conn:
            wait_until(lambda: conn.execute("SELECT count(*) FROM emails WHERE status = 'sent'").fetchone()[0] >= n,
                       interval=0.5)
        workers_cpu = sum(cpu_seconds(pid) for name, pid in stack.pids.items() if name.startswith("worker"))
        figures["worker_cpu_us"] = workers_cpu / n * 1e6  # start-up included
        figures["drain_wall"] = n / (time.perf_counter() - start)
        count, span = _sent_span(stack)
        figures["delivered"] = count / span
        rss = {name: rss_mb(pid) for name, pid in {**stack.pids, **server_children(stack.pids["server"])}.items()}
        figures["worker_rss"] = max(v for k, v in rss.items() if k.startswith("worker"))
        figures["server_rss"] = max(v for k, v in rss.items() if k.startswith("server"))
        for rate in rates:
            m = int(rate * seconds)
            with stack.sql() as conn:
                conn.execute("DELETE FROM events; DELETE FROM email_tags; DELETE FROM emails")
            achieved = asyncio.run(_accept(stack, m, body, rate=rate))
            with stack.sql() as conn:  # every accepted email (a Send that failed under load stored nothing)
                m = conn.execute("SELECT count(*) FROM emails").fetchone()[0]
                wait_until(lambda: conn.execute("SELECT count(*) FROM emails WHERE status = 'sent'").fetchone()[0] >= m,
                           interval=0.5)
                rows = conn.execute(
                    "SELECT extract(epoch FROM e.sent_at - e.created_at) * 1000,"
                    "       extract(epoch FROM s.occurred_at - e.created_at) * 1000"
                    " FROM emails e JOIN events s ON s.email_id = e.id AND s.type = 'sending'"
                ).fetchall()
            figures["latency"].append((rate, achieved, percentiles([r[0] for r in rows]), percentiles([r[1] for r in rows])))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--rates", default="100,200", help="offered emails/s for the latency runs (comma-separated)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    f = postwire(args.n, args.workers, args.size, args.threads, rates, args.seconds)
    deliver_rate = f["delivered"]
    print(f"emails: {args.n} x ~{args.size} B, {args.workers} workers x {args.threads} threads, {os.cpu_count()} cores")
    print(f"postwire accepted:  {f['accepted']:8.0f} emails/s (backlog, no worker running)")
    print(f"postwire delivered: {deliver_rate:8.0f} emails/s (first to last SENT; {f['drain_wall']:.0f}/s counting worker start-up)")
    print(f"  worker CPU: {f['worker_cpu_us']:.0f} µs per delivered email (all worker processes, start-up included)")
    print(f"  RSS: largest server process {f['server_rss']:.0f} MB, largest worker {f['worker_rss']:.0f} MB")
    for rate, achieved, sent, waiting in f["latency"]:
        print(f"accept → SENT at {rate:.0f}/s offered ({achieved:.0f}/s achieved): "
              f"p50 {sent[50]:.1f}  p90 {sent[90]:.1f}  p99 {sent[99]:.1f} ms; "
              f"of which waiting for a worker p50 {waiting[50]:.1f}  p99 {waiting[99]:.1f} ms")
    sys.stdout.flush()  # the Postwire figures stand even if a reference below fails
    ref = reference(args.n, args.size)
    port = free_port()
    sink = smtp_sink(port)
    try:
        postfix = postfix_relay_rate(args.n, args.size, port)
    finally:
        sink.terminate()
    print(f"reference Postfix relaying to smtp-sink: {postfix:8.0f} emails/s (smtp-source → Postfix queue → sink)")
    print(f"reference smtp-source → smtp-sink (wire ceiling): {ref:8.0f} emails/s")
    print(f"ratio postwire/Postfix: {deliver_rate / postfix:.3f}   postwire/wire: {deliver_rate / ref:.3f}")


if __name__ == "__main__":
    main()
