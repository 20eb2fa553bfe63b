"""Bulk accept: SendBatch of N emails per call, one SendStream (one email per request,
and N packed per request as the SDK sends them), and SendBatch as JSON through the real
Envoy, against single Sends on the same stack in the same run: Send with the same calls
in flight as SendBatch, and Send over one connection (32 in flight) as the reference
for the one-connection SendStream. Bulk rows send to 20,000 distinct recipients in
turn (more than the server's address cache holds), as a bulk send does.

    .venv/bin/python bench/batch.py [--size 500] [--concurrency 4] [--seconds 10]

Every accepted email is stored (and published) before its call answers; no worker runs,
so the figures are the accept path alone. Needs PostgreSQL, RabbitMQ and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter

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
            # 20,000 recipients in turn, as a bulk send has: more than the server's address cache holds
            batches = [pb.SendBatchRequest(messages=[_request(b * size + n) for n in range(size)])
                       for b in range(max(1, 20_000 // size))]
            turn = iter(range(1 << 62))

            async def call() -> None:
                reply = await stub.SendBatch(batches[next(turn) % len(batches)], metadata=metadata)
                if any(r.WhichOneof("result") != "accepted" for r in reply.results):
                    raise SystemExit(f"a batch had refused messages: {reply.results[0]}")
        else:
            single = _request(0)

            async def call() -> None:
                await stub.Send(single, metadata=metadata)

        await closed_loop(call, concurrency, 1.0)  # warm up
        calls, latencies = await closed_loop(call, concurrency, seconds)
        return calls * (size or 1), latencies


async def _stream(address: str, key: str, seconds: float, pack: int = 1) -> tuple[float, list[float]]:
    """Emails acknowledged per second over one SendStream fed as fast as it reads, `pack`
    emails per request (1: `message`; more: `messages`, as the SDK sends what is ready),
    and each email's time from write to ack."""
    metadata = (("x-api-key", key),)
    written: dict[int, float] = {}
    latencies: list[float] = []
    total = int(seconds * 16000)
    emails = [_request(n) for n in range(total)]  # built ahead
    if pack == 1:
        ready = [pb.SendStreamRequest(sequence=n, message=emails[n]) for n in range(total)]
    else:
        ready = [pb.SendStreamRequest(sequence=n, messages=emails[n : n + pack]) for n in range(0, total, pack)]
    async with grpc.aio.insecure_channel(address) as channel:
        call = email_service_pb2_grpc.EmailServiceStub(channel).SendStream(metadata=metadata)
        await call.initial_metadata()
        stop = time.perf_counter() + seconds

        async def feed() -> None:
            for request in ready:
                if time.perf_counter() >= stop:
                    break
                written[request.sequence] = time.perf_counter()
                await call.write(request)
            await call.done_writing()

        def done(ack: pb.SendStreamResponse | pb.SendStreamAck, at: float) -> None:
            if ack.WhichOneof("result") != "accepted":
                raise SystemExit(f"a streamed email was refused: {ack}")
            first = ack.sequence - ack.sequence % pack
            latencies.append((at - written[first]) * 1000)

        writer = asyncio.create_task(feed())
        start = time.perf_counter()
        async for reply in call:
            at = time.perf_counter()
            if not reply.acks:
                done(reply, at)
                continue
            if any(ack.WhichOneof("result") != "accepted" for ack in reply.acks):
                raise SystemExit(f"a streamed email was refused: {reply}")
            requests = Counter(ack.sequence - ack.sequence % pack for ack in reply.acks)  # one time per request
            for first, count in requests.items():
                latencies.extend([(at - written[first]) * 1000] * count)
        await writer
        return len(latencies) / (time.perf_counter() - start), latencies


def _json_batches(address: str, key: str, size: int, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """SendBatch as JSON through a real Envoy, `concurrency` requests in flight."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from google.protobuf import json_format

    from tests.support.envoy import run_envoy

    bodies = [json_format.MessageToJson(pb.SendBatchRequest(messages=[_request(b * size + n) for n in range(size)]))
              for b in range(max(1, 20_000 // size))]  # 20,000 recipients in turn, as for gRPC
    turn = iter(range(1 << 62))
    port = int(address.rsplit(":", 1)[1])
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, run_envoy(port, tmp) as envoy:
        def client() -> None:
            with httpx.Client(base_url=envoy.base_url, timeout=60) as http:
                while time.perf_counter() < stop:
                    begun = time.perf_counter()
                    reply = http.post("/v1/emails:batchSend", headers={"x-api-key": key, "content-type": "application/json"},
                                      content=bodies[next(turn) % len(bodies)])
                    if reply.status_code != 200:
                        raise SystemExit(f"JSON SendBatch answered {reply.status_code}: {reply.text[:200]}")
                    latencies.append((time.perf_counter() - begun) * 1000)

        stop = time.perf_counter() + 1.0  # warm up
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda _: client(), range(concurrency)))
        latencies.clear()
        start = time.perf_counter()
        stop = start + seconds
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda _: client(), range(concurrency)))
        return len(latencies) * size / (time.perf_counter() - start), latencies


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
        rows: dict[str, float] = {}

        def row(name: str, measure) -> None:  # noqa: ANN001
            with stack.sql() as conn:  # each row starts from empty tables: later rows are not slowed by earlier ones
                conn.execute("TRUNCATE events, email_tags, idempotency_keys, emails CASCADE")
            time.sleep(1)  # the server's published marks of the previous row
            before, start = cpu_seconds(pid), time.perf_counter()
            rate, latencies = measure()
            used, elapsed = cpu_seconds(pid) - before, time.perf_counter() - start
            rows[name] = rate
            print(f"{name:28s} {rate:8.0f} emails/s  per call {quantiles(latencies)}; "
                  f"server {used / (rate * elapsed) * 1e6:5.0f} µs CPU per email")

        address, key, size, seconds = stack.address, stack.key, args.size, args.seconds
        row(f"Send, {args.concurrency} in flight", lambda: asyncio.run(_run(address, key, 0, args.concurrency, seconds)))
        row("Send, 1 connection, 32 in flight", lambda: asyncio.run(_run(address, key, 0, 32, seconds)))
        row(f"SendBatch of {size}", lambda: asyncio.run(_run(address, key, size, args.concurrency, seconds)))
        row("SendStream, 1 email/request", lambda: asyncio.run(_stream(address, key, seconds)))
        row(f"SendStream, {size} emails/request", lambda: asyncio.run(_stream(address, key, seconds, size)))
        row(f"SendBatch of {size}, JSON/Envoy", lambda: _json_batches(address, key, size, args.concurrency, seconds))
        batch, stream = rows[f"SendBatch of {size}"], rows[f"SendStream, {size} emails/request"]
        print(f"ratio SendBatch/Send (same calls in flight): {batch / rows[f'Send, {args.concurrency} in flight']:.2f}   "
              f"SendStream/Send (one connection): {stream / rows['Send, 1 connection, 32 in flight']:.2f}   "
              f"SendStream/SendBatch: {stream / batch:.2f}")
        print(f"JSON through Envoy / gRPC SendBatch: {rows[f'SendBatch of {size}, JSON/Envoy'] / batch:.2f}   "
              f"SendBatch vs django-post_office send_many on this box (7,701/s, issue 19): {batch / 7701:.2f}")


if __name__ == "__main__":
    main()
