"""Bulk accept: SendBatch of N emails per call vs single Sends, same stack, same run.
Reference in the same run: single Send with the same number of client connections.

    .venv/bin/python bench/batch.py [--size 500] [--concurrency 4] [--seconds 10]

Every accepted email is stored (and published) before its call answers; no worker runs,
so the figures are the accept path alone. Needs PostgreSQL, RabbitMQ and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

import grpc
from _stack import bench_stack
from accept import closed_loop, cpu_seconds, quantiles

from postwire.v1 import email_service_pb2 as pb
from postwire.v1 import email_service_pb2_grpc


def _request(n: int) -> pb.SendRequest:
    return pb.SendRequest(from_address="bench@example.com", to=[f"rcpt{n}@example.com"], subject="bench",
                          text_body="x" * 1500)


async def _run(address: str, key: str, size: int, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """Emails accepted per second and per-call latencies; `size` 0 means single Sends."""
    metadata = (("x-api-key", key),)
    async with grpc.aio.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)]) as channel:
        stub = email_service_pb2_grpc.EmailServiceStub(channel)
        if size:
            batch = pb.SendBatchRequest(messages=[_request(n) for n in range(size)])

            async def call() -> None:
                reply = await stub.SendBatch(batch, metadata=metadata)
                if any(r.WhichOneof("result") != "accepted" for r in reply.results):
                    raise SystemExit(f"a batch had refused messages: {reply.results[0]}")
        else:
            single = _request(0)

            async def call() -> None:
                await stub.Send(single, metadata=metadata)

        await closed_loop(call, concurrency, 1.0)  # warm up
        calls, latencies = await closed_loop(call, concurrency, seconds)
        return calls * (size or 1), latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=500, help="emails per SendBatch call")
    parser.add_argument("--concurrency", type=int, default=4, help="calls in flight (client connections' worth)")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load generator on the same machine; {args.concurrency} calls in flight, "
          f"1.5 KB emails, {args.seconds:.0f} s per row, no workers")
    with bench_stack(0) as stack:
        pid = stack.pids["server"]
        rows = {}
        for name, size in (("Send (reference)", 0), (f"SendBatch of {args.size}", args.size)):
            before, start = cpu_seconds(pid), time.perf_counter()
            rate, latencies = asyncio.run(_run(stack.address, stack.key, size, args.concurrency, args.seconds))
            used, elapsed = cpu_seconds(pid) - before, time.perf_counter() - start
            rows[size] = rate
            print(f"{name:22s} {rate:8.0f} emails/s  per call {quantiles(latencies)}; "
                  f"server {used / (rate * elapsed) * 1e6:5.0f} µs CPU per email")
        print(f"ratio SendBatch/Send: {rows[args.size] / rows[0]:.2f}   "
              f"vs django-post_office send_many on this box (7,701/s, issue 19): {rows[args.size] / 7701:.2f}")


if __name__ == "__main__":
    main()
