"""CPU cost per email, the figure that decides throughput on a small machine:
- server: one `postwire server` process (no workers) under a closed loop of Sends;
  its CPU seconds divided by the Sends it answered;
- delivery: the worker's delivery code (claim, SMTP to smtp-sink, record) run in this
  process on a backlog, 16 at a time; CPU seconds per delivered email. Dramatiq's
  consumer and threads come on top of this in a real worker.

    .venv/bin/python bench/cpu.py [--sends 8] [--emails 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import time

import grpc
from _stack import bench_stack
from accept import closed_loop, cpu_seconds, quantiles

from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _sends(address: str, key: str, seconds: float) -> tuple[float, list[float]]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = email_service_pb2_grpc.EmailServiceStub(channel)
        request = pb.SendRequest(from_address="bench@example.com", to=["rcpt@example.com"], subject="bench",
                                 text_body="x" * 2000)
        metadata = (("x-api-key", key),)

        async def send() -> None:
            await stub.Send(request, metadata=metadata)

        await closed_loop(send, 8, 1.0)
        return await closed_loop(send, 32, seconds)


def server_cpu(seconds: float) -> None:
    with bench_stack(0) as stack:
        pid = stack.pids["server"]
        before = cpu_seconds(pid)
        start = time.perf_counter()
        rate, lat = asyncio.run(_sends(stack.address, stack.key, seconds))
        used = cpu_seconds(pid) - before
        elapsed = time.perf_counter() - start
        print(f"server: {rate:.0f} Sends/s, {quantiles(lat)}; one process at {used / elapsed * 100:.0f}% CPU, "
              f"{used / (rate * elapsed) * 1e6:.0f} µs CPU per Send")


def delivery_cpu(emails: int) -> None:
    with bench_stack(0) as stack:
        asyncio.run(_backlog(stack, emails))
        os.environ.update({k: v for k, v in stack.env.items() if k.startswith("POSTWIRE_")})
        from core.delivery.queue import make_broker
        from core.settings import Settings
        from workers.app import WorkerApp

        settings = Settings()
        app = WorkerApp(settings, make_broker(settings))
        with stack.sql() as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM emails ORDER BY id")]

        async def drain() -> None:
            deliverer = app.deliverer()
            await deliverer.deliver(ids[0])  # connections and pools warm
            queue = iter(ids[1:])

            async def attempt() -> None:
                for email_id in queue:
                    await deliverer.deliver(email_id)

            before, start = _own_cpu(), time.perf_counter()
            await asyncio.gather(*(attempt() for _ in range(16)))
            used, elapsed = _own_cpu() - before, time.perf_counter() - start
            print(f"delivery: {(len(ids) - 1) / elapsed:.0f} emails/s in one process, "
                  f"{used / (len(ids) - 1) * 1e6:.0f} µs CPU per email")

        asyncio.run(drain())


async def _backlog(stack, emails: int) -> None:  # noqa: ANN001
    async with grpc.aio.insecure_channel(stack.address) as channel:
        stub = email_service_pb2_grpc.EmailServiceStub(channel)
        metadata = (("x-api-key", stack.key),)
        queue = iter(range(emails))

        async def client() -> None:
            for i in queue:
                await stub.Send(pb.SendRequest(from_address="bench@example.com", to=[f"r{i}@example.com"],
                                               subject="bench", text_body="x" * 2000), metadata=metadata)

        await asyncio.gather(*(client() for _ in range(32)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=float, default=8.0, help="seconds of Sends")
    parser.add_argument("--emails", type=int, default=2000)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load generator and services on the same cores")
    server_cpu(args.sends)
    delivery_cpu(args.emails)


if __name__ == "__main__":
    main()
